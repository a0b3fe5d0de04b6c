"""A box in front of two people goes to the one seen a second ago, not to one lost behind
them (TrackParams.occlusion_missed_cost; docs/tracking.md, *Merges and switches, diagnosed*).

The diagnosis of issue 24's merges on the tuning seeds: most merges and switches of boxes
without colours happen where a track that missed its person at the last sampled frame, its
reach widened for the miss, takes the box of the person standing in front. Boxes only, 1
frame/s, no AWS, no video."""

from __future__ import annotations

import pytest

from vidsift.core.detection import Box
from vidsift.core.tracking import FramePeople, TrackParams, track_segment

pytest.importorskip("norfair")

H, W = 0.6, 0.25


def box(x: float, w: float = W) -> Box:
    """A person's box (no colours: only motion tells people apart) centred at ``x``."""
    return Box(round(x - w / 2, 4), 0.3, w, H, 0.9)


def scene(n: int = 10) -> tuple[list[FramePeople], dict[tuple[int, int], str]]:
    """Someone standing at 0.5 (``stand``); someone walking right at 0.08 a second from 0.1
    (``walk``), seen at 0-3 s, missed by the detector at 4 s, hidden behind the stander at 5-6 s,
    out again from 7 s. At 5 s the one box there is the stander's, widened towards the hidden
    walker (centre 0.48): within reach of both, and, the walker's reach widened by the frame
    they were missed, nearer the walker's prediction than the stander's."""
    frames, who = [], {}
    for i in range(n):
        boxes: list[tuple[str, Box]] = [("stand", box(0.48, W + 0.04) if i == 5 else box(0.5))]
        if i <= 3 or i >= 7:
            boxes.append(("walk", box(0.1 + 0.08 * i)))
        boxes.sort(key=lambda nb: nb[1].left)
        for k, (name, _) in enumerate(boxes):
            who[(i, k)] = name
        frames.append(FramePeople(i, float(i), tuple(b for _, b in boxes)))
    return frames, who


def owner_at_5(params: TrackParams) -> set[str]:
    """Whose boxes the track holding the 5 s box holds."""
    frames, who = scene()
    tracks = track_segment(frames, params)
    holder = next(t for t in tracks if any(p.frame_index == 5 for p in t.points))
    return {who[(p.frame_index, p.box_index)] for p in holder.points if p.frame_index != 5}


def test_the_box_in_front_continues_the_person_seen_a_second_ago() -> None:
    assert TrackParams().occlusion_missed_cost > 0
    assert owner_at_5(TrackParams()) == {"stand"}
    frames, who = scene()
    tracks = track_segment(frames, TrackParams())
    longest_first = sorted(tracks, key=lambda t: -len(t.points))
    people = [{who[(p.frame_index, p.box_index)] for p in t.points} for t in longest_first]
    assert people == [{"stand"}, {"walk"}]
    assert sorted(len(t.points) for t in tracks) == [7, 10]  # the walker missed at 4-6 s, one track each


def test_without_the_cost_the_walker_lost_behind_takes_it() -> None:
    """The scene exercises the rule: without it, the walker's track (missed at 4 s, its reach
    widened) takes the stander's box."""
    assert "walk" in owner_at_5(TrackParams(occlusion_missed_cost=0.0))


def test_colours_that_decide_come_first() -> None:
    """Where colours tell the two apart (occlusion_margin), they decide, not who was missed: a
    box in the walker's colours goes to the walker, cost or not."""
    red = tuple([0.0] * 3 + [1.0] + [0.0] * 24) * 2
    blue = tuple([0.0] * 20 + [1.0] + [0.0] * 7) * 2
    frames, who = scene()
    coloured = []
    for f in frames:
        boxes = []
        for k, b in enumerate(f.boxes):
            name = who[(f.frame_index, k)]
            colours = red if name == "walk" or f.frame_index == 5 else blue
            boxes.append(Box(b.left, b.top, b.width, b.height, b.confidence, colours))
        coloured.append(FramePeople(f.frame_index, f.time_s, tuple(boxes)))
    tracks = track_segment(coloured, TrackParams())
    holder = next(t for t in tracks if any(p.frame_index == 5 for p in t.points))
    assert {who[(p.frame_index, p.box_index)] for p in holder.points if p.frame_index != 5} == {"walk"}


def test_far_settings_leave_it_off() -> None:
    """Far from the camera (TrackParams.far, chosen on vtest.avi's first half) it is off."""
    assert TrackParams().in_far_regime().occlusion_missed_cost == 0.0
