"""Track confirmation (vidsift.core.confirm): a video's short tracks are not visits, except at
its first or last frame, and their boxes stay in the people rows without a track id."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from vidsift import aws
from vidsift.core import ids
from vidsift.core.confirm import confirmed, is_confirmed
from vidsift.core.detection import Box
from vidsift.core.tracking import Point, Track, TrackParams
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.results import analytics_rows
from vidsift.stages import tracking as tracking_stage


def _track(key: str, frames: range, confidence: float = 0.9) -> Track:
    """A track with one detection per sampled frame (1 a second) of ``frames``."""
    return Track(key=key, track_id=key, points=[
        Point(i, float(i), 0, Box(0.1 + 0.01 * i, 0.2, 0.1, 0.4, confidence)) for i in frames])


def test_a_short_stray_track_is_dropped_a_long_one_kept() -> None:
    stray, long = _track("p001", range(10, 12)), _track("p002", range(5, 25))
    params = TrackParams(confirm_detections=3)
    assert [t.track_id for t in confirmed([stray, long], 0, 39, params)] == ["p002"]
    assert [t.track_id for t in confirmed([stray, long], 0, 39, TrackParams())] == ["p001", "p002"]  # 1: off
    assert [t.track_id for t in confirmed([stray, long], 0, 39, TrackParams(confirm_detections=2))] == [
        "p001", "p002"]


def test_a_short_track_at_the_videos_start_or_end_is_a_visit() -> None:
    """Someone there when the recording began or still there when it ended was seen briefly
    because the video is short, not because the detector lost them."""
    params = TrackParams(confirm_detections=3)
    at_start, at_end, inside = _track("p001", range(0, 2)), _track("p003", range(38, 40)), _track("p002", range(20, 22))
    assert [t.track_id for t in confirmed([at_start, inside, at_end], 0, 39, params)] == ["p001", "p003"]
    assert not is_confirmed(at_start, 0, 39, min_detections=3, at_ends=False)
    single = _track("p001", range(0, 1))  # a video of one frame with someone in it: one visit
    assert confirmed([single], 0, 0, params) == [single]


def test_low_score_boxes_do_not_confirm_a_track() -> None:
    """Boxes under track_confidence only continue someone (ByteTrack's second pass): as in
    drop_fragments, they do not make a track long enough to count."""
    weak = _track("p001", range(10, 14), confidence=0.4)
    weak.points[0] = replace(weak.points[0], box=replace(weak.points[0].box, confidence=0.9))
    assert not is_confirmed(weak, 0, 39, min_detections=2, track_confidence=0.5)
    assert is_confirmed(weak, 0, 39, min_detections=2, track_confidence=0.0)


def test_a_track_of_low_boxes_only_is_never_a_visit() -> None:
    """A piece holding only boxes under track_confidence (the two-way cut or a segment's end can
    leave one, at the video's last frames) is no visit, even where a short track at the ends
    would be: a low box never counts as a person on its own."""
    tail = _track("p002", range(36, 40), confidence=0.4)
    assert not is_confirmed(tail, 0, 39, track_confidence=0.5)
    assert not confirmed([tail], 0, 39, TrackParams(track_confidence=0.5))
    assert is_confirmed(tail, 0, 39, track_confidence=0.0)  # every box counts when there is no low pass
    tail.points[-1] = replace(tail.points[-1], box=replace(tail.points[-1].box, confidence=0.9))
    assert is_confirmed(tail, 0, 39, track_confidence=0.5)  # one confident box at the end: a visit


def test_a_track_must_last_min_seconds() -> None:
    gappy = Track(key="p001", points=[Point(10, 10.0, 0, Box(0.1, 0.2, 0.1, 0.4, 0.9)),
                                      Point(13, 13.0, 0, Box(0.2, 0.2, 0.1, 0.4, 0.9))])
    assert is_confirmed(gappy, 0, 39, min_seconds=3.0)
    assert not is_confirmed(gappy, 0, 39, min_seconds=3.5)


# --- in the pipeline: applied to the stitched tracks, boxes kept without an id ------------


def _upload(stack: Any, path: Path, key: str) -> str:
    s3, raw = aws.client("s3"), stack.names.bucket("raw")
    s3.upload_file(str(path), raw, key)
    return ids.video_id(raw, key, s3.head_object(Bucket=raw, Key=key)["ETag"].strip('"'))


def _confirm_with(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """track_video_work's confirmation with ``confirm_detections`` n (the stack's settings
    carry only TRACK_MAX_GAP_S of the tracker's)."""
    real = tracking_stage.confirmed
    monkeypatch.setattr(tracking_stage, "confirmed", lambda tracks, first, last, params: real(
        tracks, first, last, replace(params, confirm_detections=n)))


def test_an_unconfirmed_visit_leaves_its_boxes_in_the_people_rows(local_stack: Any, people_video: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The clip's one visit (the astronaut, frames 2-3 of 0-5: 2 detections, neither at the
    video's first or last frame) is no visit at 3: no track row, and its boxes are still in
    the people rows, counted, with no track id."""
    _confirm_with(monkeypatch, 3)
    video = _upload(local_stack, people_video, "uploads/confirm/unconfirmed.mp4")
    assert Dispatcher(local_stack).run_until_idle(timeout_s=300)
    assert [r for r in analytics_rows(local_stack, "tracks") if r["video_id"] == video] == []
    people = [r for r in analytics_rows(local_stack, "people") if r["video_id"] == video and r["person_count"]]
    assert {r["frame_index"] for r in people} == {2, 3}
    boxes = [b for r in people for b in json.loads(r["boxes"])]
    assert len(boxes) == sum(r["person_count"] for r in people) == 2
    assert [b["track_id"] for b in boxes] == [None, None]


def test_a_visit_cut_by_a_segment_boundary_is_confirmed_whole(local_stack: Any, people_video: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """3 s segments cut the 2-detection visit into two single detections: confirmed after
    stitching, it is one visit of 2, not two pieces of 1 dropped."""
    _confirm_with(monkeypatch, 2)
    monkeypatch.setenv("SEGMENT_SECONDS", "3")
    video = _upload(local_stack, people_video, "uploads/confirm/two segments.mp4")
    assert Dispatcher(local_stack).run_until_idle(timeout_s=300)
    tracks = [r for r in analytics_rows(local_stack, "tracks") if r["video_id"] == video]
    assert [(t["track_id"], t["frames"]) for t in tracks] == [("p001", 2)]
    boxes = [b for r in analytics_rows(local_stack, "people") if r["video_id"] == video
             for b in json.loads(r["boxes"])]
    assert [b["track_id"] for b in boxes] == ["p001", "p001"]
