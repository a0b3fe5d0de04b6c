"""The documents and messages the stages hand each other, typed, one place each.

Why: a stage writes a document (S3, a DynamoDB item, an SQS body) that another stage, or
the same one in another invocation, reads back; as plain dicts their keys were spelled at
both ends and nothing said which ones exist. Each type here owns its shape: ``to_json``
gives the JSON document the stages wrote before these types existed (same keys and values,
so objects already stored still read), ``from_json`` parses one, and frame metadata (the S3
metadata strings of vidsift.core.records.FrameMeta) is parsed once, where the document
enters, and travels inside as a FrameMeta.

- ``VideoTask``: split_frames' work on one video's notification (its idempotency payload).
- ``SegmentTask``: one segment of a long video, as split_frames queues it for itself.
- ``SegmentDoc``: what one segment's sampling did (``<video>/segments/<n>.json``).
- ``DetectedFrame``: one frame's boxes as detect_people records them for track_people.
- ``SegmentTracks``: one segment tracked alone (track_people, step 1), for its video's stitch.
- ``FaceWork`` / ``FaceFrame``: one group of tracks' face work (track_people to analyze_faces).

The tracking barrier's own messages (segment ready, video ready, faces) are built and
recognised in vidsift.core.completion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from vidsift.core.detection import Box, Detection
from vidsift.core.errors import BadInputError
from vidsift.core.records import FrameMeta

if TYPE_CHECKING:  # vidsift.core.frames needs PyAV, which only split_frames' package carries
    from vidsift.core.frames import SamplingOptions

#: The key that tells a segment message from an S3 notification on split_frames' queue.
SEGMENT_MESSAGE_KEY = "vidsift_segment"


@dataclass(frozen=True)
class VideoTask:
    """split_frames' work on one video version (S3 notified it): the idempotency payload of
    ``process_video``, keyed on bucket, key and etag. ``source_queue_arn`` is the queue the
    notification came from, where the video's segments go when SPLIT_QUEUE_URL is unset."""

    bucket: str
    key: str
    etag: str
    size: int
    version_id: str = ""
    source_queue_arn: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> VideoTask:
        return cls(bucket=doc["bucket"], key=doc["key"], etag=doc["etag"], size=doc["size"],
                   version_id=doc.get("version_id") or "", source_queue_arn=doc.get("source_queue_arn") or "")


@dataclass(frozen=True)
class SegmentTask:
    """One segment of one video, as it travels in an SQS message (``to_json``: the message
    body; ``to_obj``: the idempotency payload, keyed on bucket, key, etag and segment)."""

    bucket: str
    key: str
    etag: str
    size: int
    start_s: float
    end_s: float | None
    segment: int
    segments: int
    #: The sampling options the first invocation decided, so every segment uses the same.
    options: dict[str, Any] = field(default_factory=dict)
    camera_id: str = "unknown"
    recorded_at: str | None = None
    #: The object version the segments were planned from: each segment reads that version.
    version_id: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def subject(self) -> str:
        return f"{self.uri}#segment={self.segment}"

    def sampling_options(self) -> SamplingOptions:
        from vidsift.core.frames import SamplingOptions  # here: the other stages import this module without PyAV

        try:
            return SamplingOptions(**self.options)
        except (TypeError, ValueError) as exc:
            raise BadInputError(self.subject, f"segment message with bad sampling options ({exc})") from exc

    def to_obj(self) -> dict[str, Any]:
        """The dict the idempotency layer hashes (bucket, key, etag and segment)."""
        return asdict(self)

    def to_json(self) -> dict[str, Any]:
        """The SQS message body."""
        return {SEGMENT_MESSAGE_KEY: asdict(self)}

    #: The name callers used before ``to_json``.
    to_message = to_json

    @classmethod
    def from_obj(cls, doc: dict[str, Any]) -> SegmentTask:
        """A task from its idempotency payload (or a message's inner document); a malformed
        one is a bad input (BadInputError naming the SQS message)."""
        try:
            task = cls(**doc)
            if not (0 <= task.segment < task.segments) or task.start_s < 0:
                raise ValueError(f"segment {task.segment} of {task.segments} from {task.start_s} s")
            if task.end_s is not None and task.end_s <= task.start_s:
                raise ValueError(f"segment ends ({task.end_s} s) before it starts ({task.start_s} s)")
            return task
        except (TypeError, ValueError) as exc:
            raise BadInputError("SQS message", f"malformed segment message ({exc})") from exc

    @classmethod
    def from_json(cls, doc: Any) -> SegmentTask | None:
        """The task a message body carries; None when the body is no segment message (an S3
        notification on the same queue)."""
        return cls.from_obj(doc[SEGMENT_MESSAGE_KEY]) if is_segment_message(doc) else None


def is_segment_message(doc: Any) -> bool:
    return isinstance(doc, dict) and SEGMENT_MESSAGE_KEY in doc


@dataclass(frozen=True)
class SegmentDoc:
    """What sampling one segment did (the video's whole when it is one segment): written to
    ``<video>/segments/<n>.json`` by split_frames and merged into the video's summary
    (vidsift.core.segments.merge, which reads the stored documents as they are, old or new)."""

    video_id: str
    source_bucket: str
    source_key: str
    camera_id: str
    recorded_at: str | None
    size: int
    width: int | None
    height: int | None
    codec: str | None
    container: str | None
    duration_s: float | None
    rotation: int | None
    nominal_fps: float | None
    keyframe_interval_s: float | None
    sample_fps: float | None
    keyframes: bool
    dedup_distance: int | None
    segments: int
    segment_seconds: float | None
    segment: int
    start_s: float
    end_s: float | None
    strategy: str
    frames_decoded: int
    frames_sampled: int
    frames_kept: int
    duplicates_skipped: int
    seeks: int
    decode_errors: int
    first_index: int | None
    last_index: int | None
    bytes_read: int
    seconds: float
    errors: list[str]
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SegmentDoc:
        """A stored document; a key an older writer did not write reads as None."""
        return cls(**{f.name: doc.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class DetectedFrame:
    """One frame's detections as detect_people records them for track_people (the tracking
    table's frame item; a segment's SegmentTracks keeps them). ``low_boxes``: the boxes under
    PERSON_MIN_CONFIDENCE, for the tracker's second pass only (vidsift.core.detection.Detection);
    written only when there are some, so a frame without any reads and writes as before."""

    meta: FrameMeta
    model: str
    boxes: tuple[Box, ...]
    low_boxes: tuple[Box, ...] = ()

    @classmethod
    def of(cls, meta: FrameMeta, detection: Detection) -> DetectedFrame:
        return cls(meta, detection.model, detection.boxes, detection.low_boxes)

    @property
    def detection(self) -> Detection:
        return Detection(model=self.model, boxes=self.boxes, low_boxes=self.low_boxes)

    @property
    def tracked_boxes(self) -> tuple[Box, ...]:
        """What the tracker reads: the confident boxes, then the low ones. A track point's box
        index counts in this order, so the confident boxes keep their own indices."""
        return self.boxes + self.low_boxes

    def to_json(self) -> dict[str, Any]:
        doc = {"meta": self.meta.to_s3(), "model": self.model, "boxes": [b.as_doc() for b in self.boxes]}
        return doc | ({"low_boxes": [b.as_doc() for b in self.low_boxes]} if self.low_boxes else {})

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DetectedFrame:
        return cls(FrameMeta.from_s3(doc["meta"]), doc["model"], tuple(Box.from_doc(b) for b in doc["boxes"]),
                   tuple(Box.from_doc(b) for b in doc.get("low_boxes") or ()))


@dataclass(frozen=True)
class SegmentTracks:
    """One segment tracked alone (track_people, step 1; kept in the frames bucket under
    vidsift.core.keys.tracking_key): its frames, and each track's points as
    (frame index, box index), for the video's stitch (step 2)."""

    video_id: str
    segment: int
    #: Where the segment starts in the video (None: it had no frames).
    start_s: float | None
    #: The frame indices given up (never detected): the video is tracked without them.
    failed: list[int]
    frames: list[DetectedFrame]
    tracks: dict[str, list[list[int]]]

    def to_json(self) -> dict[str, Any]:
        return {"video_id": self.video_id, "segment": self.segment, "start_s": self.start_s, "failed": self.failed,
                "frames": [f.to_json() for f in self.frames], "tracks": self.tracks}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SegmentTracks:
        return cls(video_id=doc["video_id"], segment=int(doc["segment"]), start_s=doc["start_s"],
                   failed=[int(i) for i in doc["failed"]], frames=[DetectedFrame.from_json(f) for f in doc["frames"]],
                   tracks={k: [[int(i), int(b)] for i, b in pts] for k, pts in doc["tracks"].items()})


@dataclass(frozen=True)
class FaceFrame:
    """A frame chosen for face analysis, with every person's box in it (``people``: track id,
    or None for a box no track kept, and the box), so a face is given to the person holding it."""

    frame_index: int
    key: str
    meta: FrameMeta
    people: list[tuple[str | None, Box]]

    def to_json(self) -> dict[str, Any]:
        return {"frame_index": self.frame_index, "key": self.key, "meta": self.meta.to_s3(),
                "people": [[tid, b.as_doc()] for tid, b in self.people]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FaceFrame:
        return cls(frame_index=int(doc["frame_index"]), key=doc["key"], meta=FrameMeta.from_s3(doc["meta"]),
                   people=[(tid, Box.from_doc(b)) for tid, b in doc["people"]])


@dataclass(frozen=True)
class FaceWork:
    """One group of tracks' face work: written by track_people to the people bucket
    (vidsift.core.keys.faces_work_key), named by a faces message, read by analyze_faces.
    ``tracks`` are the tracks' row drafts (vidsift.core.records.build_track_draft)."""

    video_id: str
    tracks: list[dict[str, Any]]
    frames: list[FaceFrame]

    def to_json(self) -> dict[str, Any]:
        return {"video_id": self.video_id, "tracks": self.tracks, "frames": [f.to_json() for f in self.frames]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FaceWork:
        return cls(video_id=doc["video_id"], tracks=list(doc["tracks"]),
                   frames=[FaceFrame.from_json(f) for f in doc["frames"]])
