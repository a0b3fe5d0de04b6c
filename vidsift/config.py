"""Function settings, read from the environment that serverless.yml (or the local stack) sets.

The variable names are the keys of ``contract.json``'s ``env``; a test checks both agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class ConfigError(RuntimeError):
    """A setting is missing or malformed: the function cannot do anything useful."""


def _str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"environment variable {name} is not set")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class Settings:
    """The deployment's names and sampling settings as the stack hands them to every function
    (environment variables named by contract.json), parsed in one place so a handler never reads
    a variable itself and a bad value fails at start-up, not mid-batch."""

    raw_bucket: str
    frames_bucket: str
    people_bucket: str
    analytics_bucket: str
    people_stream: str
    faces_stream: str
    endpoint_name: str
    idempotency_table: str | None
    sample_fps: float
    sample_mode: str
    jpeg_quality: int
    max_frame_side: int
    person_min_confidence: float
    person_min_area: float
    face_min_confidence: float
    face_min_size: float
    #: Tracking (vidsift.core.progress): its table, the tracks stream, and the two queues
    #: track_people is told on and tells analyze_faces on. Read by the stages that use them.
    tracking_table: str | None = None
    tracks_stream: str | None = None
    track_queue_url: str | None = None
    faces_queue_url: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        mode = os.environ.get("SAMPLE_MODE", "fps") or "fps"
        if mode not in ("fps", "keyframes"):
            raise ConfigError(f"SAMPLE_MODE={mode!r}: expected 'fps' or 'keyframes'")
        return cls(
            raw_bucket=_str("RAW_BUCKET"),
            frames_bucket=_str("FRAMES_BUCKET"),
            people_bucket=_str("PEOPLE_BUCKET"),
            analytics_bucket=_str("ANALYTICS_BUCKET"),
            people_stream=_str("PEOPLE_STREAM"),
            faces_stream=_str("FACES_STREAM"),
            endpoint_name=_str("ENDPOINT_NAME"),
            idempotency_table=os.environ.get("IDEMPOTENCY_TABLE") or None,
            sample_fps=_float("SAMPLE_FPS", 1.0),
            sample_mode=mode,
            jpeg_quality=int(_float("JPEG_QUALITY", 90)),
            max_frame_side=int(_float("MAX_FRAME_SIDE", 1920)),
            person_min_confidence=_float("PERSON_MIN_CONFIDENCE", 0.5),
            person_min_area=_float("PERSON_MIN_AREA", 0.0),
            face_min_confidence=_float("FACE_MIN_CONFIDENCE", 80.0),
            face_min_size=_float("FACE_MIN_SIZE", 0.02),
            tracking_table=os.environ.get("TRACKING_TABLE") or None,
            tracks_stream=os.environ.get("TRACKS_STREAM") or None,
            track_queue_url=os.environ.get("TRACK_QUEUE_URL") or None,
            faces_queue_url=os.environ.get("FACES_QUEUE_URL") or None,
        )

    def need(self, name: str) -> str:
        """A tracking setting the calling stage cannot work without."""
        value = getattr(self, name)
        if not value:
            raise ConfigError(f"environment variable {name.upper()} is not set")
        return str(value)
