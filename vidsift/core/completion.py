"""When a segment of a video has been fully detected, and when a video has been fully
tracked: the barrier between detect_people and track_people.

Frames of one video reach detect_people in any order, across concurrent invocations and
segments, while a tracker needs them in time order and complete. Ordering them by design
(SQS FIFO groups per video) would need split_frames to send every frame itself, since S3
cannot notify a FIFO queue, and would serialise a video's detection. Instead detection
stays parallel and records each frame's boxes (vidsift.storage.progress), and progress is
counted as *sets* of frame indices, so a retried frame is never counted twice. The items
(DynamoDB, one table, vidsift.storage.progress) are small and many, so no item grows with
the video's length and no key is hot for a long video:

- one *video item* (part ``<video>``): ``segments``, ``per`` (grid points per segment, to
  find a frame's segment from its index), the source object and version, ``tracked`` (the
  segments whose tracks are stored), ``recovered`` (frames detected after being given up),
  the end state (``state``: tracked or failed, ``gap_frames``, ``reason``) and, while it has
  none, ``open`` (the sparse index the stalled-video sweeper queries);
- one *segment item* per segment (part ``<video>/<segment>``, which its frame items share):
  split_frames SETs ``expected`` (frames it wrote), ``first``/``last`` (their indices) and
  ``start`` (seconds); detect_people ADDs each frame it detected to ``done``, or to
  ``failed`` when the frame is on its last receive before the DLQ. Both sets always hold the
  sentinel -1 (DynamoDB has no empty set, and every update ADDs to both, so UPDATED_NEW
  returns both); ``expected`` is -1 until split_frames reported.

A segment is detected when ``done | failed`` covers the frames it expects, checked per
segment: extra frames in one segment cannot hide missing ones in another. The update that
sees it complete sends track_people the segment's message; a duplicate message is harmless
(track_people is idempotent per ``[video, segment, generation]``). A frame detected after
it was given up (a DLQ redrive) is *recovered*: the segment's generation (how many it
recovered) grows, so its message is new work, the segment is tracked again and the video
re-stitched under a new generation, its rows rewritten under the same record ids.

track_people tracks each segment alone (in parallel, bounded work each), then ADDs it to the
video's ``tracked``; the update that completes that set sends the video's message, on which
the segments are stitched at their boundaries, the rows written and the end state set.

A frame dead-lettered without its last receive reaching the function (a receive while the
function is throttled also counts) leaves its segment incomplete: the sweeper
(vidsift.stages.sweeping) finds the video stalled and gives such frames up, or reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from vidsift.core.errors import BadInputError

#: Keys of the messages on track_people's queue and of the one analyze_faces gets per group
#: of tracks; each message is a JSON object with exactly one of them.
SEGMENT_MESSAGE = "vidsift_track_segment"
VIDEO_MESSAGE = "vidsift_track_video"
FACES_MESSAGE = "vidsift_track_faces"

#: In every progress set (DynamoDB has no empty set) and as ``expected`` before split_frames reported.
SENTINEL = -1
#: A segment holds at most this many sampled frames: its sets stay far below DynamoDB's
#: 400 KB item limit (6-digit indices, about 4 bytes each) whatever the fps or segment length.
MAX_SEGMENT_FRAMES = 20_000
#: End states of a video.
TRACKED = "tracked"
FAILED = "failed"
#: The value of ``open`` (the sweeper's sparse index) while a video has no end state.
OPEN = "open"


def segment_part(video_id: str, segment: int) -> str:
    """Partition key of a segment's progress item and of its frames' items."""
    return f"{video_id}/{segment}"


def segment_of(index: int, per: int, segments: int) -> int:
    """The segment of frame ``index``: indices are global grid points and every segment but
    the last holds ``per`` of them (vidsift.core.segments.plan); 0 for a video sampled whole."""
    if segments <= 1 or per <= 0:
        return 0
    return min(index // per, segments - 1)


def real(values: Any) -> set[int]:
    """A progress set without its sentinel."""
    return {int(v) for v in (values or ()) if int(v) >= 0}


def segment_detected(item: dict[str, Any]) -> bool:
    """split_frames reported the segment, and each frame it wrote is detected or given up.
    Only frames within the segment's span count: an index from elsewhere (a frame written
    under another segment's number) cannot make up for one missing here."""
    expected = int(item.get("expected", SENTINEL))
    if expected < 0:
        return False
    settled = real(item.get("done")) | real(item.get("failed"))
    if "first" in item:
        first, last = int(item["first"]), int(item["last"])
        settled = {i for i in settled if first <= i <= last}
    return len(settled) >= expected


def recovered(item: dict[str, Any]) -> set[int]:
    """Frames of a segment detected after they were given up (a DLQ redrive)."""
    return real(item.get("done")) & real(item.get("failed"))


def gaps(item: dict[str, Any]) -> set[int]:
    """Frames of a segment given up and never detected."""
    return real(item.get("failed")) - real(item.get("done"))


def generation(item: dict[str, Any]) -> int:
    """A segment's generation (frames it recovered), or a video's (its ``recovered`` set):
    it only grows, so each recovery is new work for track_people's idempotency."""
    return len(recovered(item)) if "done" in item else len(real(item.get("recovered")))


def tracked(item: dict[str, Any]) -> bool:
    """Every segment's tracks are stored: the video can be stitched."""
    return "segments" in item and len(real(item.get("tracked"))) >= int(item["segments"])


def sampled_fields(frames: int, first: int | None, last: int | None, start_s: float) -> dict[str, Any]:
    """What split_frames SETs on a segment's progress item once it sampled it."""
    out: dict[str, Any] = {"expected": frames, "start": start_s}
    if first is not None and last is not None:
        out |= {"first": first, "last": last}
    return out


def span(item: dict[str, Any]) -> tuple[float, int, int] | None:
    """(start seconds, first frame index, last frame index) of a segment; None if it has no frames."""
    if "first" not in item:
        return None
    return float(item.get("start", 0.0)), int(item["first"]), int(item["last"])


@dataclass(frozen=True)
class SegmentMessage:
    """A segment is detected: track_people tracks it (``generation``: how many of its frames
    were recovered after being given up, so a recovery is new work for its idempotency)."""

    KIND: ClassVar[str] = SEGMENT_MESSAGE
    video_id: str
    segment: int
    generation: int = 0

    def to_json(self) -> dict[str, Any]:
        """The message body as sent (one key: the kind)."""
        return {self.KIND: {"video_id": self.video_id, "segment": self.segment, "generation": self.generation}}

    @classmethod
    def from_json(cls, doc: Any) -> SegmentMessage:
        """The message, from a body that is one (:func:`parse_message` says whether it is)."""
        body = _checked(cls.KIND, doc, {"video_id": str, "segment": int}, generation=True)
        return cls(body["video_id"], body["segment"], body.get("generation", 0))


@dataclass(frozen=True)
class VideoMessage:
    """A video's segments are all tracked: track_people stitches them (``generation``: frames
    recovered in the whole video)."""

    KIND: ClassVar[str] = VIDEO_MESSAGE
    video_id: str
    generation: int = 0

    def to_json(self) -> dict[str, Any]:
        """The message body as sent (one key: the kind)."""
        return {self.KIND: {"video_id": self.video_id, "generation": self.generation}}

    @classmethod
    def from_json(cls, doc: Any) -> VideoMessage:
        """The message, from a body that is one (:func:`parse_message` says whether it is)."""
        body = _checked(cls.KIND, doc, {"video_id": str}, generation=True)
        return cls(body["video_id"], body.get("generation", 0))


@dataclass(frozen=True)
class FacesMessage:
    """A group of tracks' face work is stored (people bucket, ``work_key``): analyze_faces
    analyses it."""

    KIND: ClassVar[str] = FACES_MESSAGE
    video_id: str
    work_key: str

    def to_json(self) -> dict[str, Any]:
        """The message body as sent (one key: the kind)."""
        return {self.KIND: {"video_id": self.video_id, "work_key": self.work_key}}

    @classmethod
    def from_json(cls, doc: Any) -> FacesMessage:
        """The message, from a body that is one (:func:`parse_message` says whether it is)."""
        body = _checked(cls.KIND, doc, {"video_id": str, "work_key": str}, generation=False)
        return cls(body["video_id"], body["work_key"])


#: Any of the barrier's messages.
TrackingMessage = SegmentMessage | VideoMessage | FacesMessage
_KINDS: dict[str, type[SegmentMessage] | type[VideoMessage] | type[FacesMessage]] = {
    m.KIND: m for m in (SegmentMessage, VideoMessage, FacesMessage)}


def _checked(kind: str, doc: Any, fields: dict[str, type], *, generation: bool) -> dict[str, Any]:
    """The body of a ``kind`` message, its fields checked: a message of one of these kinds
    without them is a bad input, named here once for every stage that reads them, rather than
    a KeyError retried into the DLQ. A message without ``generation`` (queued before there
    was one) is generation 0."""
    body = doc.get(kind) if isinstance(doc, dict) else None
    wrong = [k for k, t in fields.items()
             if not isinstance(body, dict) or not isinstance(body.get(k), t) or isinstance(body.get(k), bool)]
    gen = body.get("generation", 0) if isinstance(body, dict) else 0
    if generation and (not isinstance(gen, int) or isinstance(gen, bool) or gen < 0):
        wrong.append("generation")
    if wrong:
        raise BadInputError("SQS message", f"{kind} message without a valid {', '.join(wrong)}: {body!r:.200}")
    assert isinstance(body, dict)
    return body


def parse_message(doc: Any) -> TrackingMessage | None:
    """The barrier's message in ``doc`` (a parsed SQS body), or None for anything else (an S3
    event); BadInputError for a message of one of these kinds without its fields."""
    if not (isinstance(doc, dict) and len(doc) == 1):
        return None
    (kind,) = doc
    cls = _KINDS.get(kind)
    return cls.from_json(doc) if cls else None


def message_kind(doc: Any) -> tuple[str, dict[str, Any]] | None:
    """(kind, body) of one of the messages above, or None for anything else: the dict view of
    :func:`parse_message`, for readers that dispatch on the kind."""
    message = parse_message(doc)
    if message is None:
        return None
    return message.KIND, message.to_json()[message.KIND]


def subject(message: TrackingMessage, *, people_bucket: str) -> str:
    """What a failure of a tracking message is recorded under (errors/<stage>/, the logs):
    the video for track_people's messages, the group's face work object for analyze_faces'."""
    if isinstance(message, FacesMessage):
        return f"s3://{people_bucket}/{message.work_key}"
    return f"video:{message.video_id}"
