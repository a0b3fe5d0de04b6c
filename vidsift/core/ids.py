"""Deterministic identifiers: a replayed event recomputes the same ids, so it overwrites
instead of duplicating. The S3 keys built from them are in vidsift.core.keys."""

from __future__ import annotations

import hashlib


def _digest(*parts: object, length: int) -> str:
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode())
    return h.hexdigest()[:length]


def video_id(bucket: str, key: str, etag: str) -> str:
    """One id per uploaded object version (same bytes under the same key: same id)."""
    return _digest(bucket, key, etag.strip('"'), length=20)


def snapshot_id(bucket: str, key: str, etag: str) -> str:
    """The video_id of an edge snapshot: to the stages after detect_people a snapshot is a
    one-frame video, so it gets an id per uploaded object version exactly like a video (a
    replayed snapshot event recomputes it, and overwrites its copy instead of adding one)."""
    return video_id(bucket, key, etag)


def track_record_id(video: str, track_id: str) -> str:
    return _digest("tracks", video, track_id, length=32)


def people_record_id(video: str, frame_index: int) -> str:
    return _digest("people", video, frame_index, length=32)


def face_record_id(video: str, frame_index: int, face_index: int) -> str:
    return _digest("faces", video, frame_index, face_index, length=32)


def crossing_record_id(video: str, track_id: str, line: str, n: int) -> str:
    """The n-th crossing (from 0, in time order) of one track over one line."""
    return _digest("crossings", video, track_id, line, n, length=32)


def zone_visit_record_id(video: str, track_id: str, zone: str, n: int) -> str:
    """The n-th stay (from 0, in time order) of one track in one zone."""
    return _digest("zone_visits", video, track_id, zone, n, length=32)
