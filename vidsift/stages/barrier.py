"""The tracking barrier's writes and the messages they release: the stage side of
vidsift.core.completion (which decides), over the tracking table's store
(vidsift.storage.progress, which holds the items).

split_frames begins a video (its video item, before any frame exists) and reports each
segment it sampled; detect_people settles frames (detected, or given up on their last
receive); the update that sees a segment complete sends track_people the segment. Each
update returns only what it named (UPDATED_NEW): the segment's sets, never the video's.

Sending happens after the update that completes a segment, so an invocation that dies (or
whose SendMessage fails) between the two would leave the segment complete and never sent.
So a redelivery that finds its frames done already sends the segment again when the video
has not been tracked with it (``recorded``): track_people is idempotent, a duplicate costs
nothing. The stalled-video sweeper (vidsift.stages.sweeping) closes the remaining gaps.
"""

from __future__ import annotations

import time
from typing import Any

from vidsift import aws
from vidsift.core import completion, keys
from vidsift.core.completion import SENTINEL, segment_part
from vidsift.logs import get_logger
from vidsift.storage.progress import PROGRESS_N, DynamoProgressStore

logger = get_logger("tracking")
#: What a settling update must see to decide whether its segment is complete.
_SEGMENT_FIELDS = ("expected", "done", "failed")


def now() -> int:
    return int(time.time())


def begin_video(table: str, video: str, *, segments: int, per: int, source: str, version: str) -> None:
    """split_frames knows how the video is cut: recorded before any of its frames exists, so
    detect_people can find a frame's segment from its index (and the sweeper the video)."""
    DynamoProgressStore(table).mark(video, set_={"segments": segments, "per": per, "source": source, "version": version,
                                                 "updated_at": now()},
                                    default={"open": completion.OPEN},
                                    add={"tracked": {SENTINEL}, "recovered": {SENTINEL}})


def fail_video(table: str, video: str, *, reason: str, source: str, version: str) -> None:
    """The video's end state when its input is unusable (the reason is also under errors/)."""
    DynamoProgressStore(table).mark(video, set_={"state": completion.FAILED, "reason": reason[:1000], "source": source,
                                                 "version": version, "updated_at": now()}, remove=["open"])


def _segment(table: str, part: str, *, set_: dict[str, Any] | None = None,
             add: dict[str, set[int]] | None = None) -> dict[str, Any]:
    """One settling update of a segment item; its expected count and both sets, as they are now."""
    sets = {"done": {SENTINEL}, "failed": {SENTINEL}}
    for k, v in (add or {}).items():
        sets[k] = sets[k] | set(v)
    got = DynamoProgressStore(table).mark(part, set_={**(set_ or {}), "updated_at": now()}, add=sets,
                                          default={} if set_ and "expected" in set_ else {"expected": SENTINEL})
    if all(k in got for k in _SEGMENT_FIELDS):
        return got
    return DynamoProgressStore(table).item(part)  # an unchanged attribute left out of the answer


def _send_segment(track_queue_url: str, video: str, segment: int, item: dict[str, Any]) -> None:
    message = completion.SegmentMessage(video, segment, completion.generation(item))
    aws.send_messages(track_queue_url, [message.to_json()])


def report_sampled(table: str, track_queue_url: str | None, video: str, segment: int,
                   fields: dict[str, Any]) -> None:
    """split_frames sampled a segment: how many frames it wrote. If detection already settled
    them all (a small video, a retry), the segment goes to track_people from here."""
    item = _segment(table, segment_part(video, segment), set_=fields)
    if completion.segment_detected(item) and track_queue_url:
        _send_segment(track_queue_url, video, segment, item)


def settle(table: str, track_queue_url: str, video: str, segment: int, *, done: set[int] = frozenset(),
           failed: set[int] = frozenset()) -> None:
    """Frames of one segment detected (``done``) or given up (``failed``); the update that
    finds the segment complete sends it on (again, with a new generation, when it recovered
    frames given up before)."""
    add = {k: set(v) for k, v in (("done", done), ("failed", failed)) if v}
    item = _segment(table, segment_part(video, segment), add=add)
    if completion.segment_detected(item):
        _send_segment(track_queue_url, video, segment, item)


def videos(table: str, video_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The video items of ``video_ids`` (one BatchGetItem); a video not begun is absent."""
    found = DynamoProgressStore(table).get([(v, PROGRESS_N) for v in sorted(video_ids)])
    return {part: item for (part, _), item in found.items()}


def segment_of(video_item: dict[str, Any] | None, index: int) -> int:
    item = video_item or {}
    return completion.segment_of(index, int(item.get("per", 0)), int(item.get("segments", 1)))


def recorded(table: str, track_queue_url: str, frames: list[tuple[str, int]]) -> dict[tuple[str, int], dict[str, str]]:
    """The frames among ``frames`` (video, frame index) whose work is done, with the metadata
    their boxes were recorded from: their boxes are stored and their segment's progress counts
    them. Both, because an invocation that died between the two writes has not settled its
    frames. Two BatchGetItems for a whole batch: the videos (how they are cut), then the
    frames and their segments' progress. The caller compares the stored metadata (content hash
    included) with the frame's own: the same bytes are work done; others are not.

    A complete segment the video was not tracked with (an earlier delivery completed it and
    then died, or its SendMessage failed) is sent to track_people again from here."""
    frames = list(dict.fromkeys(frames))
    if not frames:
        return {}
    items = videos(table, {v for v, _ in frames})
    where = {(v, i): segment_part(v, segment_of(items.get(v), i)) for v, i in frames}
    found = DynamoProgressStore(table).get([*((p, i) for (_, i), p in where.items()),
                                            *((p, PROGRESS_N) for p in dict.fromkeys(where.values()))])
    done: dict[tuple[str, int], dict[str, str]] = {}
    resend: set[tuple[str, int]] = set()
    for (video, index), part in where.items():
        doc, seg = found.get((part, index)), found.get((part, PROGRESS_N)) or {}
        if doc is None or not isinstance(doc.get("meta"), dict) or index not in completion.real(seg.get("done")):
            continue
        done[(video, index)] = doc["meta"]
        segment = int(part.rsplit("/", 1)[1])
        if completion.segment_detected(seg) and _untracked(items.get(video, {}), segment, seg):
            resend.add((video, segment))
    for video, segment in sorted(resend):
        logger.warning("a complete segment its video was not tracked with: sent to track_people again",
                       extra={"video_id": video, "segment": segment})
        _send_segment(track_queue_url, video, segment, found[(segment_part(video, segment), PROGRESS_N)])
    return done


def _untracked(video_item: dict[str, Any], segment: int, seg: dict[str, Any]) -> bool:
    """The video has no end state yet, or has one without this segment's recovered frames."""
    if video_item.get("state") != completion.TRACKED:
        return segment not in completion.real(video_item.get("tracked"))
    return bool(completion.recovered(seg) - completion.real(video_item.get("recovered")))


def record_frames(table: str, track_queue_url: str, frames: list[tuple[str, int, int, dict[str, Any]]]) -> None:
    """An invocation's frames (video, segment, index, document): their boxes in as few writes
    as DynamoDB takes, then one ADD per segment to its progress. The boxes are written first,
    so a segment the ADD completes finds every one of its frames."""
    if not frames:
        return
    DynamoProgressStore(table).put_frames([(segment_part(v, s), i, doc) for v, s, i, doc in frames])
    by_segment: dict[tuple[str, int], set[int]] = {}
    for video, segment, index, _ in frames:
        by_segment.setdefault((video, segment), set()).add(index)
    for (video, segment), indices in sorted(by_segment.items()):
        settle(table, track_queue_url, video, segment, done=indices)


def give_up(table: str, track_queue_url: str, frame_keys: list[str]) -> None:
    """Frames on their way to the DLQ (or found missing by the sweeper): their segments are
    tracked without them, the gap recorded."""
    by_video: dict[str, set[int]] = {}
    for key in frame_keys:
        parsed = keys.parse_frame_key(key)
        if parsed:
            by_video.setdefault(parsed[0], set()).add(parsed[1])
    if not by_video:
        return
    items = videos(table, set(by_video))
    for video, indices in sorted(by_video.items()):
        by_segment: dict[int, set[int]] = {}
        for i in indices:
            by_segment.setdefault(segment_of(items.get(video), i), set()).add(i)
        for segment, lost in sorted(by_segment.items()):
            logger.warning("frames given up: their video is tracked without them",
                           extra={"video_id": video, "segment": segment, "frames": sorted(lost)})
            settle(table, track_queue_url, video, segment, failed=lost)
