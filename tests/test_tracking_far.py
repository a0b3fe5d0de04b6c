"""TrackParams.far: the settings that replace the tracker's where walkers are far from the camera
(vidsift.core.linking.far_regime), and only there. Boxes only, 1 frame/s, no video."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vidsift.core.confirm import confirmed
from vidsift.core.detection import Box
from vidsift.core.tracking import FramePeople, Point, Track, TrackParams, appearance_distance, for_regime, track_segment

pytest.importorskip("norfair")

#: Two appearances (each half's histogram sums to 1) 0.3 apart: one far person's boxes before
#: and after a change of light or background, as on vtest.avi (docs/tracking.md).
SUNNY = tuple([1.0, 0.0] + [0.0] * 26) * 2
SHADE = tuple([0.7, 0.3] + [0.0] * 26) * 2


def walker(speed_heights: float, h: float, times: range, colour_change_at: int) -> list[FramePeople]:
    """One person ``h`` tall walking right at ``speed_heights`` of their heights a second, in
    SUNNY colours until ``colour_change_at`` and SHADE from then on."""
    w = 0.4 * h * 0.75
    frames = []
    for t in times:
        x = 0.2 + speed_heights * h * 0.75 * t  # frame widths (4:3 frame)
        colours = SUNNY if t < colour_change_at else SHADE
        frames.append(FramePeople(t, float(t), (Box(round(x - w / 2, 4), 0.4, round(w, 4), h, 0.9, colours),)))
    return frames


def test_the_two_appearances_are_as_far_apart_as_said() -> None:
    assert appearance_distance(SUNNY, SHADE) == pytest.approx(0.3)


def test_in_far_regime_puts_the_far_settings_in_place() -> None:
    p = TrackParams(max_gap_s=3.0, far=(("max_appearance", 0.4), ("confirm_detections", 2)))
    q = p.in_far_regime()
    assert (q.max_appearance, q.confirm_detections, q.max_gap_s, q.far) == (0.4, 2, 3.0, ())
    assert replace(q, max_appearance=p.max_appearance, confirm_detections=1) == replace(p, far=())


def test_the_default_far_settings_weigh_colours_less() -> None:
    near, far = TrackParams(), TrackParams().in_far_regime()
    assert far.max_appearance > near.max_appearance and far.appearance_weight < near.appearance_weight


def test_for_regime_is_the_far_settings_only_where_walkers_take_long_steps() -> None:
    fast = track_segment(walker(0.8, 0.2, range(0, 4), 99), TrackParams(far=()))
    slow = track_segment(walker(0.25, 0.7, range(0, 4), 99), TrackParams(far=()))
    params = TrackParams()
    assert for_regime(fast, params, 1.0) == params.in_far_regime()
    assert for_regime(slow, params, 1.0) is params
    assert for_regime(fast, TrackParams(far=()), 1.0) == TrackParams(far=())


def test_a_far_walker_whose_colours_change_stays_one_track() -> None:
    """0.8 heights a second, the colours 0.3 apart from t=4: one track with the far settings;
    with the generated scenes' settings everywhere (far=()), the colour change cuts it."""
    frames = walker(0.8, 0.2, range(0, 8), 4)
    assert len(track_segment(frames, TrackParams(far=()))) == 2
    tracks = track_segment(frames, TrackParams())
    assert [len(t.points) for t in tracks] == [8]


def test_a_near_walker_whose_colours_change_is_tracked_as_before() -> None:
    """0.25 heights a second (the near generated scenes' step): the far settings do not apply."""
    frames = walker(0.25, 0.7, range(0, 8), 4)
    before = track_segment(frames, TrackParams(far=()))
    assert track_segment(frames, TrackParams()) == before
    assert len(before) == 2


def test_confirmed_judges_far_tracks_by_the_far_settings() -> None:
    """A far-only confirmation of 2 detections drops a one-detection track beside far walkers,
    and keeps it beside near ones."""
    def one(key: str, t: int) -> Track:
        return Track(key=key, points=[Point(t, float(t), 0, Box(0.8, 0.1, 0.05, 0.2, 0.9))])

    far_walk = track_segment(walker(0.8, 0.2, range(0, 10), 99), TrackParams(far=()))
    near_walk = track_segment(walker(0.25, 0.7, range(0, 10), 99), TrackParams(far=()))
    params = TrackParams(far=(("confirm_detections", 2),))
    assert [t.key for t in confirmed([*far_walk, one("x", 5)], 0, 9, params)] == [far_walk[0].key]
    assert [t.key for t in confirmed([*near_walk, one("x", 5)], 0, 9, params)] == [near_walk[0].key, "x"]
