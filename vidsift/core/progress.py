"""When a segment of a video has been fully detected, and when a video has been fully
tracked: the barrier between detect_people and track_people.

Frames of one video reach detect_people in any order, across concurrent invocations and
segments, while a tracker needs them in time order and complete. Ordering them by design
(SQS FIFO groups per video) would need split_frames to send every frame itself, since S3
cannot notify a FIFO queue, and would serialise a video's detection. Instead detection
stays parallel and records each frame's boxes (aws.tracking_put_frames), and one progress
item per video (aws.tracking_mark) counts frames as a *set* of frame indices, so a
retried frame is never counted twice:

- split_frames, after sampling segment k, SETs ``segments`` and ``expected_k`` (frames it
  wrote), ``first_k``/``last_k`` (their frame indices) and ``start_k`` (seconds);
- detect_people ADDs each frame it detected to ``done``, or to ``failed`` when the frame
  is on its last receive before the DLQ (the gap is recorded; the video does not stall);
- the update that sees every segment reported and ``done | failed`` cover the frames
  expected sends track_people one message per segment. Only one update can see the set
  become complete, and a duplicate message is harmless (track_people is idempotent), so
  no lock is needed.

track_people tracks each segment alone (in parallel, bounded work each), then ADDs it to
``tracked``; the update that completes that set sends the video's message, on which the
segments are stitched at their boundaries and the rows written.

A frame dead-lettered without its last receive reaching the function (a receive while the
function is throttled also counts) leaves its video incomplete: its tracks wait until the
frame is redriven from the DLQ (docs/tracking.md, operations).
"""

from __future__ import annotations

from typing import Any

from vidsift.core.errors import BadInputError

#: Keys of the messages on track_people's queue and of the one analyze_faces gets per group
#: of tracks; each message is a JSON object with exactly one of them.
SEGMENT_MESSAGE = "vidsift_track_segment"
VIDEO_MESSAGE = "vidsift_track_video"
FACES_MESSAGE = "vidsift_track_faces"


def detected(item: dict[str, Any]) -> bool:
    """Every segment has reported its frames, and each frame written is detected or given up."""
    if "segments" not in item:
        return False
    counts = [item.get(f"expected_{k}") for k in range(int(item["segments"]))]
    if any(c is None for c in counts):
        return False
    settled = set(item.get("done", set())) | set(item.get("failed", set()))
    return len(settled) >= sum(int(c) for c in counts)


def tracked(item: dict[str, Any]) -> bool:
    """Every segment's tracks are stored: the video can be stitched."""
    return "segments" in item and len(set(item.get("tracked", set()))) >= int(item["segments"])


def sampled_fields(segment: int, segments: int, frames: int, first: int | None, last: int | None,
                   start_s: float) -> dict[str, Any]:
    """What split_frames SETs on the video's progress item for one sampled segment."""
    out: dict[str, Any] = {"segments": segments, f"expected_{segment}": frames, f"start_{segment}": start_s}
    if first is not None and last is not None:
        out |= {f"first_{segment}": first, f"last_{segment}": last}
    return out


def span(item: dict[str, Any], segment: int) -> tuple[float, int, int] | None:
    """(start seconds, first frame index, last frame index) of a segment; None if it has no frames."""
    if f"first_{segment}" not in item:
        return None
    return float(item.get(f"start_{segment}", 0.0)), int(item[f"first_{segment}"]), int(item[f"last_{segment}"])


def segment_message(video_id: str, segment: int) -> dict[str, Any]:
    return {SEGMENT_MESSAGE: {"video_id": video_id, "segment": segment}}


def video_message(video_id: str) -> dict[str, Any]:
    return {VIDEO_MESSAGE: {"video_id": video_id}}


def faces_message(video_id: str, work_key: str) -> dict[str, Any]:
    return {FACES_MESSAGE: {"video_id": video_id, "work_key": work_key}}


#: The fields each message must carry, and their types.
_FIELDS: dict[str, dict[str, type]] = {
    SEGMENT_MESSAGE: {"video_id": str, "segment": int},
    VIDEO_MESSAGE: {"video_id": str},
    FACES_MESSAGE: {"video_id": str, "work_key": str},
}


def message_kind(doc: Any) -> tuple[str, dict[str, Any]] | None:
    """(kind, body) of one of the messages above, or None for anything else (an S3 event).

    A message of one of these kinds without its fields is a bad input, named here once for
    every stage that reads them, rather than a KeyError retried into the DLQ."""
    if not (isinstance(doc, dict) and len(doc) == 1):
        return None
    (kind, body), = doc.items()
    if kind not in _FIELDS:
        return None
    wrong = [k for k, t in _FIELDS[kind].items()
             if not isinstance(body, dict) or not isinstance(body.get(k), t) or isinstance(body.get(k), bool)]
    if wrong:
        raise BadInputError("SQS message", f"{kind} message without a valid {', '.join(wrong)}: {body!r:.200}")
    return kind, body


def subject(kind: str, body: dict[str, Any], *, people_bucket: str) -> str:
    """What a failure of a tracking message is recorded under (errors/<stage>/, the logs):
    the video for track_people's messages, the group's face work object for analyze_faces'."""
    if kind == FACES_MESSAGE:
        return f"s3://{people_bucket}/{body.get('work_key')}"
    return f"video:{body.get('video_id')}"


def tracking_key(video_id: str, segment: int) -> str:
    """Where a segment's tracks are kept (frames bucket) until the video is stitched."""
    return f"tracking/{video_id}/{segment:04d}.json"


def faces_work_prefix(video_id: str) -> str:
    return f"tracks/{video_id}/"


def faces_work_key(video_id: str, first_track: str) -> str:
    """Where a group of tracks' face work is kept (people bucket) for analyze_faces."""
    return f"{faces_work_prefix(video_id)}{first_track}.json"
