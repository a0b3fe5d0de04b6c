"""The rows of the ``people``, ``faces`` and ``tracks`` tables, and the frame metadata they
come from.

Column names come from contract.json; ``build_*`` return dicts with exactly those keys,
in order, so the Glue tables, DuckDB and the records cannot drift apart. (The counting
tables, ``crossings`` and ``zone_visits``, are built by vidsift.core.counts.)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote

from vidsift import contract
from vidsift.core import ids, keys
from vidsift.core.detection import Detection
from vidsift.core.errors import BadInputError

#: ``datetime.UTC`` is Python 3.11+; this module is in vidsift/deploy/checks.py's import closure,
#: which runs on the deploy machine's python3 (3.9+, tests/test_deploy_python.py).
UTC = timezone.utc  # noqa: UP017

#: The S3 metadata key that marks a frame as alert-only (an edge snapshot): written by
#: detect_people on its copy in the people bucket, read by analyze_faces. Spelled only here.
ALERT_ONLY_KEY = "alert-only"
#: The S3 metadata key of a frame's content hash (SHA-256 of its JPEG, hex): written by
#: split_frames, kept on the copy in the people bucket; the stages key their work on it.
CONTENT_SHA256_KEY = "content-sha256"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FrameMeta:
    """What travels with a frame as S3 user metadata from split_frames to the last stage.

    ``alert_only`` marks an edge snapshot (the alert fast lane, vidsift.core.snapshots): the
    stages alert on it but write no row, because the clip it belongs to (``clip_key``) is
    processed in full later and is the record. Both stay out of an ordinary frame's
    metadata, so frames look exactly as they always did.

    ``content_sha256`` is the SHA-256 of the frame's JPEG, which split_frames computes as it
    writes the frame: with the frame key it identifies the frame's work (vidsift.stages.runtime,
    FRAME_KEY), where an ETag cannot (with SSE-KMS an ETag is no digest of the bytes, so
    rewriting identical bytes gives a new one). None for an edge snapshot and for frames
    written before it existed: their work stays keyed on the object version.
    """

    video_id: str
    source_bucket: str
    source_key: str
    camera_id: str
    frame_index: int
    frame_time_s: float
    captured_at: str | None
    alert_only: bool = False
    clip_key: str | None = None
    content_sha256: str | None = None
    #: The split_frames segment the frame was sampled in (0 for a video sampled whole).
    segment: int = 0

    def to_s3(self) -> dict[str, str]:
        # S3 metadata must be ASCII: keys with unicode are percent-encoded.
        d = {k.replace("_", "-"): ("" if v is None else str(v)) for k, v in asdict(self).items()
             if k not in ("alert_only", "clip_key", "content_sha256", "segment")}
        d["source-key"] = quote(self.source_key, safe="/")
        d["camera-id"] = quote(self.camera_id, safe="")
        if self.alert_only:
            d[ALERT_ONLY_KEY] = "true"
        if self.clip_key:
            d["clip-key"] = quote(self.clip_key, safe="/")
        if self.content_sha256:
            d[CONTENT_SHA256_KEY] = self.content_sha256
        if self.segment:
            d["segment"] = str(self.segment)
        return d

    @classmethod
    def from_s3(cls, meta: dict[str, str]) -> FrameMeta:
        try:
            return cls(
                video_id=meta["video-id"],
                source_bucket=meta["source-bucket"],
                source_key=unquote(meta["source-key"]),
                camera_id=unquote(meta.get("camera-id", "")),
                frame_index=int(meta["frame-index"]),
                frame_time_s=float(meta["frame-time-s"]),
                captured_at=meta.get("captured-at") or None,
                alert_only=meta.get(ALERT_ONLY_KEY, "").lower() == "true",
                clip_key=unquote(meta.get("clip-key", "")) or None,
                content_sha256=meta.get(CONTENT_SHA256_KEY) or None,
                segment=int(meta.get("segment") or 0),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"frame metadata incomplete or malformed ({exc!r}): {meta}") from exc

    @classmethod
    def parse(cls, meta: dict[str, str], what: str) -> FrameMeta:
        """``from_s3`` where a frame's metadata enters a stage (HeadObject, the endpoint's
        answer): metadata that does not parse is the frame's fault, a bad input naming ``what``
        (its URI). Inside the stages the frame's metadata then travels as this object."""
        try:
            return cls.from_s3(meta)
        except ValueError as exc:
            raise BadInputError(what, str(exc)) from exc


def captured_at(recorded_at: str | None, frame_time_s: float) -> str | None:
    start = parse_iso(recorded_at)
    return iso(start + timedelta(seconds=frame_time_s)) if start else None


def _ordered(table: str, values: dict[str, Any]) -> dict[str, Any]:
    cols = contract.columns(table)
    missing = set(cols) - set(values)
    extra = set(values) - set(cols)
    if missing or extra:
        raise AssertionError(f"{table} record mismatch: missing {sorted(missing)}, extra {sorted(extra)}")
    return {c: values[c] for c in cols}


def build_people_record(meta: FrameMeta, detection: Detection, processed: datetime,
                        track_ids: list[str | None] | None = None) -> dict[str, Any]:
    """``track_ids``: the track of each box (None for a box no track kept), in box order."""
    boxes = [b.as_dict() for b in detection.boxes]
    if track_ids is not None:
        if len(track_ids) != len(boxes):  # zip(strict=True) is 3.10+ (see UTC above)
            raise ValueError(f"{len(track_ids)} track ids for {len(boxes)} boxes")
        boxes = [b | {"track_id": track_ids[i]} for i, b in enumerate(boxes)]
    return _ordered("people", {
        "record_id": ids.people_record_id(meta.video_id, meta.frame_index),
        "video_id": meta.video_id,
        "source_bucket": meta.source_bucket,
        "source_key": meta.source_key,
        "camera_id": meta.camera_id,
        "frame_index": meta.frame_index,
        "frame_time_s": meta.frame_time_s,
        "frame_key": keys.frame_key(meta.video_id, meta.frame_index),
        "captured_at": meta.captured_at,
        "person_count": detection.person_count,
        "max_confidence": detection.max_confidence,
        "boxes": json.dumps(boxes, separators=(",", ":")),
        "detector": detection.model,
        "processed_at": iso(processed),
        "dt": processed.astimezone(UTC).strftime("%Y-%m-%d"),
    })


def _value(detail: dict[str, Any], name: str) -> bool | None:
    attr = detail.get(name)
    return bool(attr["Value"]) if isinstance(attr, dict) and "Value" in attr else None


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


@dataclass(frozen=True)
class FaceMatch:
    """The known person a face matched in the face collection (SearchFacesByImage)."""

    name: str
    similarity: float


def build_face_record(meta: FrameMeta, face_index: int, detail: dict[str, Any], analyzer: str,
                      processed: datetime, match: FaceMatch | None = None,
                      track_id: str | None = None) -> dict[str, Any]:
    """Flatten one Rekognition FaceDetail; an attribute the analyser did not return is null.

    ``matched_name``/``match_similarity`` are null when the face matched nobody or when no
    face collection is configured: a row never claims a match that was not made.
    """
    box = detail.get("BoundingBox", {})
    age = detail.get("AgeRange") or {}
    gender = detail.get("Gender") or {}
    emotions = {e["Type"]: round(float(e["Confidence"]), 2) for e in detail.get("Emotions") or []}
    pose = detail.get("Pose") or {}
    quality = detail.get("Quality") or {}
    gaze = detail.get("EyeDirection") or {}
    return _ordered("faces", {
        "record_id": ids.face_record_id(meta.video_id, meta.frame_index, face_index),
        "video_id": meta.video_id,
        "source_key": meta.source_key,
        "camera_id": meta.camera_id,
        "frame_index": meta.frame_index,
        "frame_time_s": meta.frame_time_s,
        "frame_key": keys.frame_key(meta.video_id, meta.frame_index),
        "captured_at": meta.captured_at,
        "face_index": face_index,
        "confidence": _num(detail.get("Confidence")),
        "bbox_left": _num(box.get("Left")),
        "bbox_top": _num(box.get("Top")),
        "bbox_width": _num(box.get("Width")),
        "bbox_height": _num(box.get("Height")),
        "age_low": age.get("Low"),
        "age_high": age.get("High"),
        "gender": gender.get("Value"),
        "gender_confidence": _num(gender.get("Confidence")),
        "top_emotion": max(emotions, key=lambda k: (emotions[k], k)) if emotions else None,
        "emotions": json.dumps(dict(sorted(emotions.items())), separators=(",", ":")) if emotions else None,
        "smile": _value(detail, "Smile"),
        "eyeglasses": _value(detail, "Eyeglasses"),
        "sunglasses": _value(detail, "Sunglasses"),
        "beard": _value(detail, "Beard"),
        "mustache": _value(detail, "Mustache"),
        "eyes_open": _value(detail, "EyesOpen"),
        "mouth_open": _value(detail, "MouthOpen"),
        "pose_roll": _num(pose.get("Roll")),
        "pose_yaw": _num(pose.get("Yaw")),
        "pose_pitch": _num(pose.get("Pitch")),
        "brightness": _num(quality.get("Brightness")),
        "sharpness": _num(quality.get("Sharpness")),
        "analyzer": analyzer,
        "processed_at": iso(processed),
        "matched_name": match.name if match else None,
        "match_similarity": _num(match.similarity) if match else None,
        # Columns added after the first release go last: tables already in use keep their order.
        "face_occluded": _value(detail, "FaceOccluded"),
        "eye_direction_yaw": _num(gaze.get("Yaw")),
        "eye_direction_pitch": _num(gaze.get("Pitch")),
        "track_id": track_id,
        "visitor_id": None,  # set by vidsift.stages.visitors when visitors are on
        "dt": processed.astimezone(UTC).strftime("%Y-%m-%d"),
    })


def keep_face(detail: dict[str, Any], min_confidence: float, min_size: float) -> bool:
    box = detail.get("BoundingBox") or {}
    return float(detail.get("Confidence", 0)) >= min_confidence and float(box.get("Width", 0)) >= min_size


#: The columns of a track row that its faces decide (null until face analysis has run).
TRACK_FACE_COLUMNS = ("faces", "matched_name", "match_similarity", "age_low", "age_high", "gender", "top_emotion")


def build_track_draft(video_id: str, track_id: str, points: list[tuple[int, float, dict[str, float]]],
                      metas: dict[int, FrameMeta], best_frame: int, face_frames: int,
                      gap_frames: int) -> dict[str, Any]:
    """A track's row before its faces are known. ``points``: (frame index, time, box) of each
    detection in time order; ``metas``: the frames' metadata by index."""
    first, last = metas[points[0][0]], metas[points[-1][0]]
    best_box = next(b for i, _, b in points if i == best_frame)
    path = [[round(t, 3), round(b["left"] + b["width"] / 2, 4), round(b["top"] + b["height"] / 2, 4),
             round(b["height"], 4)] for _, t, b in points]
    draft = {
        "record_id": ids.track_record_id(video_id, track_id),
        "track_id": track_id,
        "video_id": video_id,
        "camera_id": first.camera_id,
        "source_key": first.source_key,
        "first_seen_s": round(points[0][1], 3),
        "last_seen_s": round(points[-1][1], 3),
        "duration_s": round(points[-1][1] - points[0][1], 3),
        "captured_at_first": first.captured_at,
        "captured_at_last": last.captured_at,
        "frames": len(points),
        "max_box_height": round(max(b["height"] for _, _, b in points), 4),
        "best_frame_key": keys.frame_key(video_id, best_frame),
        "best_box": json.dumps(best_box, separators=(",", ":"), sort_keys=True),
        "path": json.dumps(path, separators=(",", ":")),
        "face_frames": face_frames,
        "gap_frames": gap_frames,
    }
    return draft | {c: None for c in TRACK_FACE_COLUMNS} | {"faces": 0}


def _face_rank(face: dict[str, Any]) -> tuple[float, float, str]:
    """The face that shows the person best: the largest, then the most confident."""
    area = (face.get("bbox_width") or 0) * (face.get("bbox_height") or 0)
    return (area, face.get("confidence") or 0, face["record_id"])


def build_track_record(draft: dict[str, Any], faces: list[dict[str, Any]], processed: datetime,
                       visit: dict[str, Any] | None = None) -> dict[str, Any]:
    """The track's row: its draft, plus the best face's attributes (null without a face) and
    the best match any of its faces made (a person is who they matched, at any frame).
    ``visit``: the visitor columns (vidsift.stages.visitors), null when visitors are off or
    the visit showed no usable face."""
    best = max(faces, key=_face_rank) if faces else None
    matches = [f for f in faces if f.get("matched_name")]
    match = max(matches, key=lambda f: (f.get("match_similarity") or 0, f["record_id"])) if matches else None
    return _ordered("tracks", draft | {
        "faces": len(faces),
        "matched_name": match["matched_name"] if match else None,
        "match_similarity": match["match_similarity"] if match else None,
        "age_low": best["age_low"] if best else None,
        "age_high": best["age_high"] if best else None,
        "gender": best["gender"] if best else None,
        "top_emotion": best["top_emotion"] if best else None,
        "processed_at": iso(processed),
        "visitor_id": None, "visit_number": None, "visitor_first_seen": None,
        **(visit or {}),
        "dt": processed.astimezone(UTC).strftime("%Y-%m-%d"),
    })
