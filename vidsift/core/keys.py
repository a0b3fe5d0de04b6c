"""Every S3 key vidsift builds, in one place.

A key is an interface: one stage writes it, another (or a notification's prefix filter in
serverless.yml, or a reader of the analytics bucket) finds it by its shape. Built here, a
key's shape is changed once and read the same everywhere. Keys are deterministic (no clock,
no random part) so a replayed event rewrites the same object instead of adding one.
Prefixes that the stack's notifications or tables depend on come from vidsift/contract.json.

Buckets, for orientation: *frames* (frame images, segment documents, per-segment tracks,
video summaries), *people* (frames with people, snapshot copies, face work), *analytics*
(rows, count tables, errors/, visitors' objects).
"""

from __future__ import annotations

import hashlib

from vidsift import contract

# --- frames bucket: one folder per video ------------------------------------------------


def frames_prefix(video: str) -> str:
    """Everything split_frames wrote for a video (frames, segment documents, summary)."""
    return f"{video}/"


def frame_key(video: str, frame_index: int) -> str:
    """One sampled frame; the index is the frame's global grid point, zero-padded so the
    keys list in time order."""
    return f"{frames_prefix(video)}{frame_index:06d}.jpg"


def parse_frame_key(key: str) -> tuple[str, int] | None:
    """(video, frame index) of a frame key, None for any other key (a segment document, a
    summary): the inverse of :func:`frame_key`."""
    video, _, name = key.rpartition("/")
    stem = name.removesuffix(".jpg")
    return (video, int(stem)) if video and "/" not in video and stem.isdigit() and name.endswith(".jpg") else None


def summary_key(video: str) -> str:
    """split_frames' summary of a whole video."""
    return f"{frames_prefix(video)}summary.json"


def segment_prefix(video: str) -> str:
    """A video's segment documents (one per segment split_frames sampled)."""
    return f"{frames_prefix(video)}segments/"


def segment_key(video: str, segment: int) -> str:
    """One segment's document (what split_frames sampled of it)."""
    return f"{segment_prefix(video)}{segment:05d}.json"


def tracking_key(video_id: str, segment: int) -> str:
    """Where a segment's tracks are kept (frames bucket) until the video is stitched."""
    return f"tracking/{video_id}/{segment:04d}.json"


# --- people bucket ----------------------------------------------------------------------


def snapshot_copy_key(snapshot: str) -> str:
    """detect_people's copy of an edge snapshot in the people bucket: under the prefix that
    notifies alert_faces (contract stages.alert_faces.source_prefix)."""
    return f"{contract.stage('alert_faces')['source_prefix']}{frame_key(snapshot, 0)}"


def faces_work_prefix(video_id: str) -> str:
    """A video's face work documents (one per group of tracks that share frames)."""
    return f"tracks/{video_id}/"


def faces_work_key(video_id: str, first_track: str) -> str:
    """Where a group of tracks' face work is kept (people bucket) for analyze_faces."""
    return f"{faces_work_prefix(video_id)}{first_track}.json"


# --- analytics bucket -------------------------------------------------------------------


def error_prefix(stage: str) -> str:
    """A stage's error records (contract analytics_prefixes.errors)."""
    return f"{contract.load()['analytics_prefixes']['errors']}{stage}/"


def error_key(stage: str, subject: str, version: str = "") -> str:
    """Where the error of ``subject`` (one object version, when ``version`` names it) is
    recorded: hashed, so any subject (a URI, a message id) makes a safe key, and the same
    failure recorded twice is one object."""
    parts = (subject, version) if version else (subject,)
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f"{error_prefix(stage)}{digest}.json"


def count_key(table: str, dt: str, video_id: str) -> str:
    """Where a video's rows of a count table (crossings, zone visits) live, partitioned by day."""
    return f"{contract.load()['count_tables'][table]}dt={dt}/{video_id}.json"


def visitor_faces_prefix(visitor_id: str) -> str:
    """A visitor's face thumbnails (contract visitors.faces_prefix): deleted with the visitor."""
    return f"{contract.load()['visitors']['faces_prefix']}{visitor_id}/"


def visitor_face_key(visitor_id: str, face_ref: str) -> str:
    """One face thumbnail of a visitor."""
    return f"{visitor_faces_prefix(visitor_id)}{face_ref}.jpg"


def visitor_audit_key(at: str, visitor_id: str, action: str) -> str:
    """One audit record of an admin action on a visitor (contract visitors.audit_prefix); the
    time's colons dropped, so the key is safe everywhere."""
    return f"{contract.load()['visitors']['audit_prefix']}{at.replace(':', '')}-{visitor_id}-{action}.json"
