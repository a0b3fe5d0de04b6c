"""Lines and zones: the layout file's checks, the counting rules, and the generated scenes'
exact truth through today's tracker (vidsift.core.layout, vidsift.core.lines,
vidsift.testing.line_scenes). Pure Python and norfair on a few hundred boxes: seconds."""

from __future__ import annotations

import pytest

from vidsift.core import layout as lay
from vidsift.core.layout import CameraLayout, Line, Zone
from vidsift.core.lines import feet_from_path, line_crossings, zone_visits
from vidsift.testing import line_scenes as ls

GOOD = """
cameras:
  door:
    lines:
      - name: entrance
        points: [[0.5, 0.0], [0.5, 1.0]]
        in_from: [0.1, 0.5]
    zones:
      - name: counter
        polygon: [[0.6, 0.4], [0.9, 0.4], [0.9, 1.0], [0.6, 1.0]]
"""


def test_the_issue_example_reads() -> None:
    layout = lay.loads(GOOD, "cameras.yaml")
    door = layout.camera("door")
    assert door is not None and layout.camera("porch") is None and layout.camera(None) is None
    assert door.lines[0] == Line("entrance", (0.5, 0.0), (0.5, 1.0), (0.1, 0.5), lay.DEFAULT_BAND)
    assert door.zones[0].polygon[2] == (0.9, 1.0)
    assert lay.loads(layout.to_json()) == layout  # the JSON the functions read is the same layout


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace("in_from:", "in_frm:"),
     ["camera 'door', line 'entrance': unknown key in_frm", "camera 'door', line 'entrance': needs in_from"]),
    (GOOD.replace("[0.9, 0.4]", "[1.2, 0.4]"),
     ["camera 'door', zone 'counter': polygon point 2 [1.2, 0.4] is outside"]),
    (GOOD.replace("[[0.5, 0.0], [0.5, 1.0]]", "[[0.5, -0.1], [0.5, 1.0]]"),
     ["camera 'door', line 'entrance': points point 1 [0.5, -0.1] is outside"]),
    (GOOD.replace("[[0.6, 0.4], [0.9, 0.4], [0.9, 1.0], [0.6, 1.0]]", "[[0.6, 0.4], [0.9, 0.4]]"),
     ["camera 'door', zone 'counter': a polygon needs at least 3 points, got 2"]),
    (GOOD.replace("[[0.6, 0.4], [0.9, 0.4], [0.9, 1.0], [0.6, 1.0]]",
                  "[[0.6, 0.4], [0.9, 1.0], [0.9, 0.4], [0.6, 1.0]]"),
     ["camera 'door', zone 'counter': the polygon crosses itself (edge 1-2 meets edge 3-4)"]),
    (GOOD.replace("[[0.5, 0.0], [0.5, 1.0]]", "[[0.5, 0.5], [0.5, 0.5]]"),
     ["camera 'door', line 'entrance': the line has zero length"]),
    (GOOD.replace("in_from: [0.1, 0.5]", "in_from: [0.5, 0.7]"),
     ["camera 'door', line 'entrance': in_from [0.5, 0.7] lies on"]),
    (GOOD + "      - name: counter\n        polygon: [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]]\n",
     ["camera 'door': two zones are named 'counter'"]),
    (GOOD + "  door:\n    lines: []\n", ["not valid YAML", "'door' is written twice"]),
    (GOOD.replace("    zones:", "    zone:"), ["camera 'door': unknown key zone"]),
    ("cameras:\n  porch:\n    lines:\n      - points: [[0.1, 0.1], [0.2, 0.2]]\n        in_from: [0.9, 0.1]\n",
     ["camera 'porch', line 1: needs a name"]),
])
def test_bad_layouts_are_refused_naming_camera_item_and_problem(text: str, expected: list[str]) -> None:
    with pytest.raises(lay.LayoutError) as err:
        lay.loads(text, "cameras.yaml")
    message = str(err.value)
    assert message.startswith("cameras.yaml: ")
    for part in expected:
        assert part in message, message


def test_every_problem_is_named_at_once() -> None:
    text = GOOD.replace("[0.9, 0.4]", "[1.2, 0.4]").replace("[[0.5, 0.0], [0.5, 1.0]]", "[[0.5, 0.5], [0.5, 0.5]]")
    with pytest.raises(lay.LayoutError, match="2 problems") as err:
        lay.loads(text)
    assert "zone 'counter'" in str(err.value) and "line 'entrance'" in str(err.value)


# -------------------------------------------------------------------- the rules, on hand-made paths

VERTICAL = Line("v", (0.5, 0.2), (0.5, 0.9), (0.1, 0.5), 0.03)


def test_jitter_around_the_line_counts_one_crossing_not_a_burst() -> None:
    xs = [0.2, 0.3, 0.49, 0.51, 0.48, 0.52, 0.49, 0.51, 0.5, 0.7, 0.8]
    got = line_crossings(VERTICAL, [(float(t), x, 0.6) for t, x in enumerate(xs)])
    assert [(c.direction, round(c.time_s, 2)) for c in got] == [("in", 2.5)]


def test_direction_follows_in_from_and_crossing_time_is_interpolated() -> None:
    path = [(0.0, 0.8, 0.5), (1.0, 0.4, 0.5), (2.0, 0.2, 0.5)]
    assert [(c.direction, round(c.time_s, 9)) for c in line_crossings(VERTICAL, path)] == [("out", 0.75)]
    flipped = Line("v", VERTICAL.a, VERTICAL.b, (0.9, 0.5), 0.03)
    assert [c.direction for c in line_crossings(flipped, path)] == ["in"]


def test_only_within_the_lines_extent() -> None:
    below = [(0.0, 0.2, 0.95), (1.0, 0.8, 0.95)]  # the line ends at y 0.9
    assert line_crossings(VERTICAL, below) == []
    # round the end: no count; back through the line: one out
    around = [(0.0, 0.2, 0.8), (1.0, 0.45, 0.95), (2.0, 0.6, 0.95), (3.0, 0.7, 0.8), (4.0, 0.3, 0.8)]
    assert [c.direction for c in line_crossings(VERTICAL, around)] == ["out"]


def test_a_track_starting_on_the_line_has_no_side_to_come_from() -> None:
    assert line_crossings(VERTICAL, [(0.0, 0.5, 0.5), (1.0, 0.51, 0.5), (2.0, 0.9, 0.5)]) == []


def test_zone_visit_ends_only_beyond_its_band_and_a_track_ending_inside_ends_it() -> None:
    square = Zone("z", ((0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)), 0.03)
    # in, just out (within the band), in again, far out, in until the track ends
    xs = [0.2, 0.5, 0.61, 0.55, 0.9, 0.5, 0.5]
    got = zone_visits(square, [(float(t), x, 0.5) for t, x in enumerate(xs)])
    assert [(round(v.entered_s, 3), round(v.left_s, 3)) for v in got] == [(0.667, 3.143), (4.75, 6.0)]


def test_concave_zone_inside_is_its_shape_not_its_hull() -> None:
    u_shape = Zone("u", ((0.1, 0.1), (0.3, 0.1), (0.3, 0.7), (0.7, 0.7), (0.7, 0.1), (0.9, 0.1), (0.9, 0.9),
                         (0.1, 0.9)), 0.02)
    assert zone_visits(u_shape, [(0.0, 0.5, 0.3), (1.0, 0.5, 0.5)]) == []  # in the notch
    assert len(zone_visits(u_shape, [(0.0, 0.5, 0.3), (1.0, 0.5, 0.8)])) == 1


def test_feet_come_from_the_stored_path() -> None:
    assert feet_from_path("[[1.5,0.5,0.4,0.6]]") == [(1.5, 0.5, 0.7)]


# -------------------------------------------------------------------- generated scenes, exact truth

NAMES = [s.name for s in ls.FIXED]


@pytest.mark.parametrize("name", NAMES)
def test_scene_truth_is_what_the_scene_was_made_to_show(name: str) -> None:
    scene = ls.fixed(name)
    truth = ls.truth(scene)
    assert truth.per_line(scene.camera) == scene.designed_lines
    assert truth.per_zone(scene.camera) == scene.designed_stays


@pytest.mark.parametrize("noise", ["true boxes", "jittered boxes"])
@pytest.mark.parametrize("name", NAMES)
def test_counts_through_the_tracker_are_exact_and_stays_within_a_sample_period(name: str, noise: str) -> None:
    """At 1 frame a second through today's tracker: crossings per line and direction exact,
    one stay per true stay, its dwell within one sample period (1 s) of the truth. The
    jittered boxes (edges off by 3% of the box, a tenth missed) are what a detector gives."""
    scene = ls.fixed(name)
    noisy = {"jitter": 0.03, "drop": 0.1, "seed": 7} if noise == "jittered boxes" else {}
    got = ls.count(scene.camera, ls.tracked_paths(ls.frames(scene, **noisy)))
    truth = ls.truth(scene)
    assert got.per_line(scene.camera) == truth.per_line(scene.camera)
    assert got.per_zone(scene.camera) == truth.per_zone(scene.camera)
    for want, have in zip(sorted(truth.stays, key=lambda v: (v.zone, v.entered_s)),
                          sorted(got.stays, key=lambda v: (v.zone, v.entered_s)), strict=True):
        assert abs(have.dwell_s - want.dwell_s) <= 1.0 / ls.SAMPLE_FPS, (want, have)


def test_a_crossing_between_two_samples_is_never_sampled_near_the_line() -> None:
    scene = ls.fixed("crossing between two samples")
    (path,) = ls.sampled_true_paths(scene)
    assert min(abs(x - 0.5) for _, x, _ in path) > 0.1  # no sample within 0.1 of the line
    assert [c.direction for c in line_crossings(scene.camera.lines[0], path)] == ["in"]


def test_standing_on_the_line_with_jitter_gives_no_burst() -> None:
    """20 s on the line, each box edge off by 3% of the box (a fair detector), five draws."""
    scene = ls.fixed("standing on the line")
    for seed in range(5):
        got = ls.count(scene.camera, ls.tracked_paths(ls.frames(scene, jitter=0.03, seed=seed)))
        assert got.per_line(scene.camera) == {"entrance": (1, 0)}, seed


def test_random_scenes_are_deterministic() -> None:
    a, b = ls.random_scene(3), ls.random_scene(3)
    assert a == b and a.camera.lines and a.camera.zones
    assert isinstance(a.camera, CameraLayout)
