"""The S3 user metadata a clip carries, and the file probe that fills it.

Object keys are random, so everything the pipeline needs to know about a clip travels here.
The keys the pipeline reads (camera id, recording start, frame rate, the snapshot's clip) come
from the contract's ``upload_metadata``, which split_frames and detect_people read too, so
they cannot drift; the others are the edge's own findings, kept for people and queries.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from vidsift.contract import upload_key

log = logging.getLogger(__name__)

CAMERA_ID = upload_key("camera_id")
DEVICE_ID = "device-id"
RECORDED_AT = upload_key("recorded_at")
FPS = upload_key("fps")
DURATION_S = "duration-s"
FRAME_WIDTH = "frame-width"
FRAME_HEIGHT = "frame-height"
EDGE_MAX_PEOPLE = "edge-max-people"
EDGE_MAX_CONFIDENCE = "edge-max-confidence"
EDGE_DETECTOR = "edge-detector"
EDGE_THRESHOLD = "edge-threshold"
#: On snapshots only: the key of the clip the snapshot belongs to (for alerts).
CLIP_KEY = upload_key("clip_key")
#: One presence recorded in several clips: a group id shared by its parts, and each part's number.
GROUP_ID = upload_key("group_id")
PART = upload_key("part")


def iso_utc(when: datetime) -> str:
    """ISO 8601 in UTC with a Z and milliseconds: '2025-05-01T12:00:00.250Z'."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: recording times must carry a time zone")
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float | None
    width: int | None
    height: int | None
    creation_time: datetime | None


def probe_video(path: Path) -> VideoInfo:
    """Duration, frame size and the container's creation time, read with PyAV.

    A file PyAV cannot read is still a clip to deliver (the pipeline records the error), so a
    failed probe yields an empty VideoInfo and a warning rather than an exception.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            duration = None
            if container.duration:
                duration = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            created = None
            tag = container.metadata.get("creation_time") or stream.metadata.get("creation_time")
            if tag:
                try:
                    created = datetime.fromisoformat(tag.replace("Z", "+00:00"))
                    created = created if created.tzinfo else created.replace(tzinfo=UTC)
                except ValueError:
                    created = None
            return VideoInfo(duration, stream.codec_context.width or None, stream.codec_context.height or None,
                             created)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        log.warning("could not probe %s (%s): uploading it without duration and frame size", path, exc)
        return VideoInfo(None, None, None, None)


def recording_start(path: Path, info: VideoInfo) -> datetime:
    """Best guess of when a file's recording started: its creation_time tag, else mtime - duration.

    A camera writes the file while it records, so its modification time is the end of recording.
    """
    if info.creation_time is not None:
        return info.creation_time.astimezone(UTC)
    end = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    return end - timedelta(seconds=info.duration_s or 0.0)


def _ascii(name: str) -> str:
    """S3 user metadata is ASCII. A name like "Küche" is percent-encoded (the pipeline unquotes
    camera-id); plain ASCII names are left exactly as configured."""
    return name if name.isascii() and "%" not in name else quote(name, safe=" -_.~:@/+")


@dataclass(frozen=True)
class EdgeStats:
    """What the recorder saw: the pipeline can skip or prioritise on these."""

    max_people: int
    max_confidence: float
    detector: str
    threshold: float


def build_metadata(
    *,
    camera_id: str,
    device_id: str,
    recorded_at: datetime,
    info: VideoInfo | None = None,
    stats: EdgeStats | None = None,
    sample_fps: float | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """S3 user metadata (boto3 ``Metadata=``; S3 adds the x-amz-meta- prefix). Values are ASCII."""
    md = {CAMERA_ID: _ascii(camera_id), DEVICE_ID: _ascii(device_id), RECORDED_AT: iso_utc(recorded_at)}
    if sample_fps is not None:
        md[FPS] = f"{sample_fps:g}"
    if info is not None:
        if info.duration_s is not None:
            md[DURATION_S] = f"{info.duration_s:.3f}"
        if info.width:
            md[FRAME_WIDTH] = str(info.width)
        if info.height:
            md[FRAME_HEIGHT] = str(info.height)
    if stats is not None:
        md[EDGE_MAX_PEOPLE] = str(stats.max_people)
        md[EDGE_MAX_CONFIDENCE] = f"{stats.max_confidence:.4f}"
        md[EDGE_DETECTOR] = stats.detector
        md[EDGE_THRESHOLD] = f"{stats.threshold:g}"
    md.update(extra or {})
    bad = {k: v for k, v in md.items() if not (k.isascii() and v.isascii())}
    if bad:
        raise ValueError(f"S3 user metadata must be ASCII: {bad}")
    return md
