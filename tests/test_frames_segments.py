"""Segments: a long video sampled in parallel pieces gives exactly the frames of one pass."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import pytest
from test_frames import write_clip

from vidsift.core import segments
from vidsift.core.errors import BadInputError
from vidsift.core.frames import SamplingOptions, VideoFile, VideoInfo
from vidsift.core.segments import SegmentTask, plan


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s of drifting photos, 10 fps, keyframe every 2 s (what make_video writes, smaller)."""
    from vidsift.testing.samples import Segment, make_video

    d = tmp_path_factory.mktemp("long")
    photos = ["coffee", "astronaut", "chelsea", "rocket", "camera", "grace_hopper", "coffee", "chelsea"]
    return make_video(d / "long.mp4", [Segment(p, 5) for p in photos], fps=10, width=320, height=240)


def sample(path: Path, options: SamplingOptions, start_s: float = 0.0, end_s: float | None = None,
           info: VideoInfo | None = None) -> list[tuple[int, float, bytes]]:
    with VideoFile(path) as video:  # a fresh open per segment, as a separate invocation would
        return [(f.index, f.time_s, f.jpeg) for f in video.sample(options, info, start_s=start_s, end_s=end_s)]


def segmented(path: Path, options: SamplingOptions, span_s: float) -> tuple[list[tuple[int, float, bytes]], int]:
    with VideoFile(path) as video:
        spans = plan(video.duration_s, options, span_s)
    out: list[tuple[int, float, bytes]] = []
    for start, end in spans:
        out += sample(path, options, start, end)
    return out, len(spans)


@pytest.mark.parametrize("options,span", [
    (SamplingOptions(fps=1), 7.0),
    (SamplingOptions(fps=0.3), 10.0),       # grid points are not whole seconds
    (SamplingOptions(fps=3), 6.5),
    (SamplingOptions(fps=1, strategy="sequential"), 9.0),
    (SamplingOptions(keyframes=True), 7.0),  # keyframes indexed by milliseconds: globally known
])
def test_segments_give_the_frames_of_one_pass(long_clip: Path, options: SamplingOptions, span: float) -> None:
    whole = sample(long_clip, options)
    parts, count = segmented(long_clip, options, span)
    assert count >= 4
    assert [(i, t) for i, t, _ in parts] == [(i, t) for i, t, _ in whole]
    assert [j for *_, j in parts] == [j for *_, j in whole]


def test_segment_starts_are_found_by_seeking(long_clip: Path) -> None:
    info = VideoInfo()
    frames = sample(long_clip, SamplingOptions(fps=1, strategy="sequential"), 21.0, 28.0, info)
    assert [i for i, *_ in frames] == list(range(21, 28))
    assert info.seeks >= 1 and info.frames_decoded < 100  # it did not decode the 20 s before


def test_segments_of_a_stream_without_index(tmp_path: Path) -> None:
    """MPEG-TS seeks by bisecting timestamps and can land after the target: the landing is
    checked and backed off, so segments still match one pass."""
    clip = write_clip(tmp_path / "seg.ts", [i / 15 for i in range(15 * 20)], tb=Fraction(1, 90000), gop=15,
                      bframes=3, fmt="mpegts")
    options = SamplingOptions(fps=1.5)
    whole = sample(clip, options)
    parts: list[tuple[int, float, bytes]] = []
    for start, end in [(0.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, None)]:
        parts += sample(clip, options, start, end)
    assert parts == whole and len(whole) == 30


def test_plan_boundaries_are_grid_points() -> None:
    assert plan(100, SamplingOptions(fps=1), 300) == [(0.0, None)]
    assert plan(320, SamplingOptions(fps=1), 300) == [(0.0, None)]  # within 10 %: one segment
    assert plan(None, SamplingOptions(fps=1), 300) == [(0.0, None)]
    assert plan(3600, SamplingOptions(fps=1), 300)[:2] == [(0.0, 300.0), (300.0, 600.0)]
    assert len(plan(3600, SamplingOptions(fps=1), 300)) == 12
    spans = plan(1000, SamplingOptions(fps=0.3), 100)
    assert all(round(s * 0.3, 6).is_integer() for s, _ in spans)  # every start is a sample time
    assert spans[-1][1] is None and all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert plan(10, SamplingOptions(keyframes=True), 3) == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, None)]
    assert plan(300.2, SamplingOptions(fps=1), 100) == [(0.0, 100.0), (100.0, 200.0), (200.0, None)]  # no sliver


def test_segment_messages_round_trip_and_are_validated() -> None:
    task = SegmentTask(bucket="b", key="k", etag="e", size=10, start_s=300.0, end_s=600.0, segment=1, segments=3,
                       options=segments.options_doc(SamplingOptions(fps=0.5, dedup_distance=6)))
    doc = task.to_message()
    assert segments.is_segment_message(doc)
    back = SegmentTask.from_obj(doc[segments.MESSAGE_KEY])
    assert back == task and back.sampling_options() == SamplingOptions(fps=0.5, dedup_distance=6)
    for bad in ({"segment": 3}, {"end_s": 100.0}, {"start_s": -1.0}, {"nonsense": 1}):
        with pytest.raises(BadInputError, match="segment"):
            SegmentTask.from_obj({**doc[segments.MESSAGE_KEY], **bad})


def test_merge_is_order_independent() -> None:
    base = {"video_id": "v", "source_bucket": "b", "source_key": "k", "frames_sampled": 3, "frames_kept": 2,
            "duplicates_skipped": 1, "seconds": 1.5, "start_s": 0.0, "end_s": 5.0, "errors": [], "last_index": 4}
    docs = [{**base, "segment": 0}, {**base, "segment": 1, "start_s": 5.0, "end_s": None, "last_index": 9,
                                      "errors": ["cut"]}]
    a, b = segments.merge(docs), segments.merge(docs[::-1])
    assert a == b
    assert (a["frames_sampled"], a["frames_kept"], a["duplicates_skipped"], a["segments"]) == (6, 4, 2, 2)
    assert a["errors"] == ["cut"] and a["last_index"] == 9 and a["seconds"] == 3.0
