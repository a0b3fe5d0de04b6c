"""Edge snapshots: the alert fast lane.

The edge recorder uploads one JPEG at a clip's first person detection, under the contract's
``snapshot_prefix`` of the raw bucket, with the clip's upload metadata (camera id, wall time
of the frame as ``recorded-at``, and ``clip-key``: the clip it belongs to). The raw bucket
notifies detect_people's queue of it directly, so an alert does not wait for the clip to be
finished, uploaded and split.

A snapshot is an *alert-only frame*: detect_people and analyze_faces alert on it exactly as
on any frame, but write no ``people`` or ``faces`` row, because the clip is processed in full
later and is the record (counting the snapshot too would count the same moment twice).
A snapshot carries no content hash (FrameMeta.content_sha256): its work in both stages is
keyed on its object version, as its id is, where a frame's is keyed on its bytes.

Plain Python, no AWS call: the handler does the HeadObject and hands the metadata here. The
metadata keys are vidsift.core.uploads', the module the edge writes them with.
"""

from __future__ import annotations

from urllib.parse import unquote

from vidsift import contract
from vidsift.core import ids
from vidsift.core.errors import BadInputError
from vidsift.core.records import FrameMeta, captured_at, parse_iso
from vidsift.core.uploads import CAMERA_ID, CLIP_KEY, RECORDED_AT


def is_snapshot(bucket: str, key: str, raw_bucket: str) -> bool:
    """An edge snapshot: a frame-suffixed object under snapshot_prefix of the raw bucket
    (exactly what the raw bucket's snapshot notification lets through)."""
    doc = contract.load()
    return bucket == raw_bucket and key.startswith(doc["snapshot_prefix"]) and key.endswith(doc["frame_suffix"])


def snapshot_meta(bucket: str, key: str, etag: str, metadata: dict[str, str]) -> FrameMeta:
    """The FrameMeta of a snapshot, from its S3 user metadata (as HeadObject returns it).

    Frame 0 at 0 s of a one-frame "video" whose id is the snapshot's own
    (:func:`vidsift.core.ids.snapshot_id`), captured at the edge's ``recorded-at``; the source
    is the snapshot itself. A snapshot without a camera id is a bad input: an alert must say
    which camera saw the person, and "unknown" would match the wrong rules. A ``recorded-at``
    that is not ISO 8601 is refused too (the alert would show the wrong time); when absent,
    alerts use the processing time, as for any frame without one.
    """
    uri = f"s3://{bucket}/{key}"
    camera = unquote(metadata.get(CAMERA_ID, "")).strip()
    if not camera:
        raise BadInputError(uri, f"the snapshot has no {CAMERA_ID} metadata: an alert must name its camera")
    recorded_at = metadata.get(RECORDED_AT) or None
    if recorded_at is not None and parse_iso(recorded_at) is None:
        raise BadInputError(uri, f"{RECORDED_AT}={recorded_at!r} is not an ISO 8601 time")
    return FrameMeta(
        video_id=ids.snapshot_id(bucket, key, etag), source_bucket=bucket, source_key=key, camera_id=camera,
        frame_index=0, frame_time_s=0.0, captured_at=captured_at(recorded_at, 0.0), alert_only=True,
        clip_key=unquote(metadata.get(CLIP_KEY, "")) or None,
    )
