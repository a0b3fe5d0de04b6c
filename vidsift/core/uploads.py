"""The S3 user metadata an upload (a clip or a snapshot) carries, as the edge writes it.

Object keys are random, so everything the pipeline needs to know about an upload travels
here. The keys the pipeline reads (camera id, recording start, frame rate, the snapshot's
clip...) come from the contract's ``upload_metadata``, which split_frames and detect_people
read too (vidsift.core.snapshots parses a snapshot's), so they cannot drift; the others are
the edge's own findings, kept for people and queries.

The writer lives in vidsift, not in the edge package, so the edge (edge/recorder.py,
edge/cli.py) and the service's own checks (vidsift/testing/localcheck.py) build the same
metadata while the service never imports the device's code: the edge depends on vidsift's
contract, never the other way round. Plain Python: no AWS, no environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from vidsift.contract import upload_key

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
    """What the edge's file probe found (edge.metadata.probe_video): None for what it could
    not read, so a clip PyAV cannot open is still delivered, without those keys."""

    duration_s: float | None
    width: int | None
    height: int | None
    creation_time: datetime | None


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
