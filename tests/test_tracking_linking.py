"""vidsift.core.linking: a far walker's track pieces joined after tracking, only where the
tracks show long steps for the people's size. Boxes only, 1 frame/s, no video."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vidsift.core.confirm import confirmed
from vidsift.core.detection import Box
from vidsift.core.linking import LinkParams, far_regime, link_cost, link_if_far, link_tracks, sampling_step, steps
from vidsift.core.tracking import Point, Track, TrackParams

pytest.importorskip("scipy")

H = 0.2  # a far person: a fifth of the frame's height
RED = tuple([1.0] + [0.0] * 27) * 2
BLUE = tuple([0.0] * 27 + [1.0]) * 2


def piece(key: str, x0: float, speed: float, times: range, *, h: float = H, colours: tuple | None = None) -> Track:
    """One track: a person ``h`` tall whose centre walks from ``x0`` at ``speed`` frame widths a
    second, detected at the whole seconds ``times`` (at least half in view)."""
    w = 0.4 * h * 0.75  # 4:3 frame
    pts = []
    for t in times:
        x = x0 + speed * t
        left, right = max(0.0, x - w / 2), min(1.0, x + w / 2)
        pts.append(Point(t, float(t), 0, Box(round(left, 4), 0.5, round(right - left, 4), h, 0.9, colours)))
    return Track(key=key, points=pts)


def test_a_far_walkers_pieces_are_one_walk() -> None:
    """0.8 heights a second (0.16 frame widths at 0.2 tall), missed for 2 s: one track."""
    a, b = piece("1", 0.1, 0.16, range(0, 3)), piece("2", 0.1, 0.16, range(5, 8))
    assert far_regime([a, b], 1.0)
    out = link_if_far([a, b], TrackParams(), 1.0)
    assert [t.key for t in out] == ["1"]
    assert [p.time_s for p in out[0].points] == [0, 1, 2, 5, 6, 7]


def test_near_slow_walkers_are_not_far_and_stay_apart() -> None:
    """0.25 heights a second: the near generated scenes' step; nothing is linked."""
    a, b = piece("1", 0.2, 0.035, range(0, 4), h=0.7), piece("2", 0.2, 0.035, range(6, 10), h=0.7)
    assert not far_regime([a, b], 1.0)
    assert link_cost(a.points, b.points, TrackParams(), 1.0) is not None  # linkable by geometry alone
    assert [t.key for t in link_if_far([a, b], TrackParams(), 1.0)] == ["1", "2"]


def test_steps_are_in_heights_a_second_and_standing_is_not_walking() -> None:
    walker, stander = piece("1", 0.1, 0.16, range(0, 4)), piece("2", 0.5, 0.0, range(0, 10))
    assert steps([walker], 1.0) == pytest.approx([0.8] * 3, abs=0.01)
    assert not far_regime([stander], 1.0)
    assert far_regime([walker, stander], 1.0)  # standing steps are not counted against the walkers
    assert not far_regime([piece("1", 0.5, 0.1, range(0, 1))], 1.0)  # one detection: no step


def test_someone_entering_where_another_left_is_not_linked() -> None:
    """A leaves at the right side; 2 s later someone walks in at the right side: two visits."""
    a = piece("1", 0.5, 0.16, range(0, 4))    # centre 0.5 -> 0.98, at the side at t=3
    b = piece("2", 1.02, -0.16, range(6, 9))  # coming in from the right
    assert link_cost(a.points, b.points, TrackParams(), 1.0) is None
    assert len(link_tracks([a, b], TrackParams(), 1.0)) == 2


def test_the_assignment_gives_each_end_its_own_walk() -> None:
    """Two far walkers in opposite directions, each missed for 2 s around their crossing: each
    end is joined to the start on its own line, not to the nearest start."""
    a1, a2 = piece("a1", 0.15, 0.12, range(0, 3)), piece("a2", 0.15, 0.12, range(5, 8))
    b1, b2 = piece("b1", 0.85, -0.12, range(0, 3)), piece("b2", 0.85, -0.12, range(5, 8))
    out = link_tracks([a1, b1, a2, b2], TrackParams(), 1.0)
    joined = {t.key: [round(p.box.left, 2) for p in t.points] for t in out}
    assert sorted(joined) == ["a1", "b1"]
    assert joined["a1"] == sorted(joined["a1"]) and joined["b1"] == sorted(joined["b1"], reverse=True)


def test_other_colours_sizes_or_a_long_gap_are_not_linked() -> None:
    p = TrackParams()
    a = piece("1", 0.1, 0.16, range(0, 3), colours=RED)
    assert link_cost(a.points, piece("2", 0.1, 0.16, range(5, 8), colours=BLUE).points, p, 1.0) is None
    assert link_cost(a.points, piece("2", 0.1, 0.16, range(5, 8), colours=RED).points, p, 1.0) is not None
    assert link_cost(a.points, piece("2", 0.1, 0.16, range(5, 8), h=0.3).points, p, 1.0) is None
    slow, later = piece("1", 0.1, 0.08, range(0, 3)), piece("2", 0.1, 0.08, range(8, 10))  # 6 s apart
    assert link_cost(slow.points, later.points, p, 1.0) is None
    assert link_cost(slow.points, later.points, p, 1.0, replace(LinkParams(), max_gap_s=6.0)) is not None


def test_confirmed_links_first_and_keeps_the_first_pieces_id() -> None:
    """The video's tracks: pieces of a far walker are judged as one visit (TrackParams.link)."""
    a, b = piece("1", 0.1, 0.16, range(1, 3)), piece("2", 0.1, 0.16, range(5, 6))
    a.track_id, b.track_id = "p001", "p002"
    auto = confirmed([a, b], 0, 9, replace(TrackParams(), confirm_detections=2))
    assert [(t.track_id, len(t.points)) for t in auto] == [("p001", 3)]
    off = confirmed([a, b], 0, 9, replace(TrackParams(), confirm_detections=2, link="off"))
    assert [(t.track_id, len(t.points)) for t in off] == [("p001", 2)]
    with pytest.raises(ValueError):
        confirmed([a, b], 0, 9, replace(TrackParams(), link="sometimes"))


def test_sampling_step_is_the_shortest_gap() -> None:
    assert sampling_step([piece("1", 0.1, 0.1, range(0, 5))]) == 1.0
    assert sampling_step([piece("1", 0.1, 0.1, range(1, 3)), piece("2", 0.1, 0.1, range(5, 6))]) == 1.0
    assert sampling_step([]) == 1.0
