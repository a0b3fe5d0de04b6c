"""Long videos are cut into time segments that split_frames invocations sample in parallel.

Why: one invocation has 15 minutes and a fixed CPU share, so an hour of 1080p must not
depend on one of them. The first invocation only probes the duration and queues one
message per segment on its own queue; each segment seeks to its start and samples the
grid points in ``[start_s, end_s)``.

Frame indices and times stay global: a frame's index is ``floor(t * rate)`` of its time in
the whole video (keyframes mode: milliseconds), and segment boundaries are grid points,
so the union of the segments' frames is exactly what one unsegmented pass produces
(tests/test_frames_segments.py proves it). Near-duplicate skipping compares within a
segment only: each segment's first sampled frame is always kept.

A video is complete when all its segments are: each writes ``<video>/segments/<n>.json``,
and whichever finds all of them present writes ``summary.json`` (its content is a pure
function of the segment documents, so two segments finishing together write the same).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from vidsift.core.frames import SamplingOptions

# The segment message moved to vidsift.core.messages (one place for the stages' messages);
# these names stay importable here.
from vidsift.core.messages import SEGMENT_MESSAGE_KEY, SegmentTask, is_segment_message  # noqa: F401

#: The key that tells a segment message from an S3 notification on the same queue.
MESSAGE_KEY = SEGMENT_MESSAGE_KEY
DEFAULT_SEGMENT_SECONDS = 300.0
#: A video up to this much longer than one span is still one segment (no tiny tail segment).
_TOLERANCE = 1.1


def plan(duration_s: float | None, options: SamplingOptions, span_s: float) -> list[tuple[float, float | None]]:
    """``[(start_s, end_s), ...]`` covering the video; the last ``end_s`` is None (to the end).

    Boundaries are grid points (multiples of the sampling interval; milliseconds in
    keyframes mode), so no sample straddles two segments.
    """
    if not duration_s or span_s <= 0 or duration_s <= span_s * _TOLERANCE:
        return [(0.0, None)]
    rate = options.rate
    per = max(1, math.floor(Fraction(span_s).limit_denominator(1000) * rate))  # grid points per segment
    points = math.ceil(Fraction(duration_s).limit_denominator(1_000_000) * rate)
    count = max(1, math.ceil(points / per))
    if count > 1 and (points - (count - 1) * per) < per * (_TOLERANCE - 1):
        count -= 1  # fold a sliver of a last segment into the one before
    bounds = [round(float(Fraction(n * per) / rate), 6) for n in range(count)]
    return [(start, bounds[n + 1] if n + 1 < count else None) for n, start in enumerate(bounds)]


def options_doc(options: SamplingOptions) -> dict[str, Any]:
    return {"fps": options.fps, "keyframes": options.keyframes, "jpeg_quality": options.jpeg_quality,
            "max_side": options.max_side, "max_bytes": options.max_bytes, "dedup_distance": options.dedup_distance}


_SUMMED = ("frames_decoded", "frames_sampled", "frames_kept", "duplicates_skipped", "seeks", "decode_errors",
           "bytes_read")
_COMMON = ("video_id", "source_bucket", "source_key", "camera_id", "recorded_at", "size", "width", "height", "codec",
           "container", "duration_s", "rotation", "nominal_fps", "keyframe_interval_s", "sample_fps", "keyframes",
           "dedup_distance", "segments", "segment_seconds")


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The video's summary from its segment documents (order-independent, deterministic)."""
    docs = sorted(docs, key=lambda d: d["segment"])
    first = docs[0]
    summary: dict[str, Any] = {k: first.get(k) for k in _COMMON}
    for k in _SUMMED:
        summary[k] = sum(int(d.get(k) or 0) for d in docs)
    summary["strategy"] = sorted({d.get("strategy", "") for d in docs})
    summary["segments"] = len(docs)
    summary["seconds"] = round(sum(float(d.get("seconds") or 0) for d in docs), 3)
    summary["timings"] = {
        "compute_seconds": summary["seconds"],
        "slowest_segment_seconds": max(float(d.get("seconds") or 0) for d in docs),
        "per_segment": [{"segment": d["segment"], "start_s": d["start_s"], "end_s": d["end_s"],
                         "seconds": d.get("seconds")} for d in docs],
    }
    summary["errors"] = [e for d in docs for e in d.get("errors", [])]
    summary["warnings"] = [w for d in docs for w in d.get("warnings", [])][:50]
    indices = [d["last_index"] for d in docs if d.get("last_index") is not None]
    summary["last_index"] = max(indices) if indices else None
    return summary
