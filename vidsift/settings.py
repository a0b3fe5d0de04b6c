"""Every function setting, in one object: the only place the Lambda side reads the environment.

serverless.yml (or the local stack, vidsift/local/stack.py) sets the variables named in
``contract.json``'s ``env``; :meth:`Settings.from_env` takes those, and nothing else, from
``os.environ`` and is cached per distinct set of values. A Lambda container's environment
never changes, so that is once per cold start; a local run or a test that changes a variable
gets settings for its new values without being told.

The object is a frozen snapshot of the variables. Each setting and each typed part is parsed
from it on first use and then kept:

========== =============================================== ===============================
part       type (where it lives)                           used by
========== =============================================== ===============================
(shared)   buckets, streams, endpoint, sampling, detection most stages (flat attributes)
split      :class:`SplitSettings`                          split_frames (with the sampling)
track      ``TrackParams`` (vidsift.core.tracking)         track_people
faces      ``FaceRule`` (vidsift.core.face_frames)         track_people
alerts     ``AlertSettings`` (vidsift.core.alerts)         detect_people, analyze/alert_faces
match      ``MatchSettings`` (vidsift.core.matching)       analyze_faces, alert_faces
visitors   :class:`VisitorSettings`                        analyze_faces, expire_visitors
sweep      :class:`SweepSettings`                          sweep_stalled
rate       :class:`RateSettings`                           analyze_faces, alert_faces
runtime    :class:`RuntimeSettings`                        every handler (idempotency, errors)
========== =============================================== ===============================

Lazily, because a function parses only what it uses: DEDUP needs PyAV, which only
split_frames' layer holds, and a bad alert rule must not stop split_frames. Each handler
calls vidsift.stages.startup.check first, which parses its stage's parts, so a bad setting
is one ConfigError naming the variable before any record, not a failure of each frame.
The core's parts parse themselves from a plain mapping (``from_mapping``); the core never
reads the environment (tests/test_core_rules.py).

ConfigError lives in vidsift/core/errors.py: vidsift/deploy/checks.py raises it on the deploy
machine's python3 (3.9 perhaps), and this module's parts import the stages' core modules,
which need a newer one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Generic, TypeVar, overload

from vidsift import contract
from vidsift.core import visitors as visitor_rules
from vidsift.core.alerts import AlertSettings
from vidsift.core.errors import ConfigError
from vidsift.core.face_frames import FaceRule
from vidsift.core.matching import MatchSettings
from vidsift.core.tracking import TrackParams

T = TypeVar("T")

#: Every variable the functions read: contract.json's ``env``, nothing else.
ENV_NAMES: tuple[str, ...] = tuple(sorted(contract.load()["env"]))


# --- reading one value -----------------------------------------------------------------------


def _text(values: Mapping[str, str], name: str) -> str | None:
    """A variable's value; unset and empty are the same (serverless.yml sets "" for "none")."""
    return values.get(name) or None


def _required(values: Mapping[str, str], name: str) -> str:
    value = _text(values, name)
    if value is None:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def _number(values: Mapping[str, str], name: str, default: float, low: float | None = None,
            high: float | None = None, what: str = "") -> float:
    """A number, ``default`` when unset; ConfigError naming the variable when it is not a
    number or outside ``low``-``high``."""
    raw = values.get(name) or ""
    try:
        value = float(raw) if raw else default
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}={raw!r}: expected {low:g}-{high:g}{what}")
    return value


# --- the stages' parts -----------------------------------------------------------------------


@dataclass(frozen=True)
class SplitSettings:
    """split_frames' own settings: DEDUP (off, on or bits), SEGMENT_SECONDS (a longer video is
    cut into segments sampled in parallel), SPLIT_QUEUE_URL (where the segments are sent).
    The sampling itself (SAMPLE_*, JPEG_QUALITY, MAX_FRAME_SIDE) is shared: detect_people
    reads it too. vidsift.stages.splitting.SplitConfig puts both together."""

    dedup_distance: int = 0
    segment_seconds: float = 300.0
    queue_url: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> SplitSettings:
        from vidsift.core import segments
        from vidsift.core.dedup import parse_setting  # PyAV: split_frames' layer only

        try:
            dedup = parse_setting(values.get("DEDUP"))
        except ValueError as exc:
            raise ConfigError(f"DEDUP: {exc}") from exc
        return cls(dedup_distance=dedup,
                   segment_seconds=_number(values, "SEGMENT_SECONDS", segments.DEFAULT_SEGMENT_SECONDS),
                   queue_url=_text(values, "SPLIT_QUEUE_URL"))


#: PERSON_MIN_CONFIDENCE's default: boxes of this detector score and more are people counted.
DEFAULT_PERSON_MIN_CONFIDENCE = 0.5
#: PERSON_TRACK_CONFIDENCE's default (capped at PERSON_MIN_CONFIDENCE): detect_people asks
#: the endpoint for boxes down to this score, and those under PERSON_MIN_CONFIDENCE only
#: continue someone already tracked. Chosen on the tuning seeds (docs/tracking.md,
#: *The low boxes in the pipeline*); SSDLite keeps no box under 0.3 anyway.
DEFAULT_PERSON_TRACK_CONFIDENCE = 0.3


def _person_min_confidence(values: Mapping[str, str]) -> float:
    return _number(values, "PERSON_MIN_CONFIDENCE", DEFAULT_PERSON_MIN_CONFIDENCE)


def _person_track_confidence(values: Mapping[str, str]) -> float:
    """PERSON_TRACK_CONFIDENCE: the lowest detector score detect_people asks for (0-1, at most
    PERSON_MIN_CONFIDENCE: the boxes between the two only continue tracks). Unset, the default
    or PERSON_MIN_CONFIDENCE, whichever is lower; equal to it, the second pass is off."""
    confident = _person_min_confidence(values)
    if not values.get("PERSON_TRACK_CONFIDENCE"):
        return min(DEFAULT_PERSON_TRACK_CONFIDENCE, confident)
    value = _number(values, "PERSON_TRACK_CONFIDENCE", DEFAULT_PERSON_TRACK_CONFIDENCE, 0.0, 1.0)
    if value > confident:
        raise ConfigError(f"PERSON_TRACK_CONFIDENCE={values['PERSON_TRACK_CONFIDENCE']!r} must be at most "
                          f"PERSON_MIN_CONFIDENCE ({confident:g}): boxes under that only continue tracks")
    return value


def track_params(values: Mapping[str, str]) -> TrackParams:
    """The tracker's settings: TRACK_MAX_GAP_S (positive seconds); boxes under
    PERSON_MIN_CONFIDENCE only continue tracks (``track_confidence``); the rest its defaults."""
    confident = _person_min_confidence(values)
    raw = values.get("TRACK_MAX_GAP_S")
    if raw in (None, ""):
        return TrackParams(track_confidence=confident)
    try:
        gap = float(raw)
    except ValueError as exc:
        raise ConfigError(f"TRACK_MAX_GAP_S={raw!r} is not a number") from exc
    if gap <= 0:
        raise ConfigError(f"TRACK_MAX_GAP_S={raw!r} must be positive")
    return TrackParams(max_gap_s=gap, track_confidence=confident)


#: A face is a returning visitor at or above this Rekognition similarity (VISITOR_MATCH_THRESHOLD).
DEFAULT_VISITOR_THRESHOLD = 95.0


@dataclass(frozen=True)
class VisitorSettings:
    """VISITORS (true/false, default false), VISITOR_COLLECTION, VISITOR_TABLE,
    VISITOR_MATCH_THRESHOLD, VISITOR_FACES_MAX, VISITOR_MIN_FACE_PX, VISITOR_RETENTION_DAYS
    (vidsift.stages.visitors, which also exports it under its old name)."""

    enabled: bool
    collection: str | None = None
    table: str | None = None
    threshold: float = DEFAULT_VISITOR_THRESHOLD
    faces_max: int = visitor_rules.FACES_PER_VISITOR
    quality: visitor_rules.QualityRules = field(default_factory=visitor_rules.QualityRules)
    retention_days: float = visitor_rules.DEFAULT_RETENTION_DAYS

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> VisitorSettings:
        raw = (values.get("VISITORS") or "false").strip().lower()
        if raw not in ("true", "false", "1", "0", "on", "off", ""):
            raise ConfigError(f"VISITORS={raw!r}: expected true or false")
        enabled = raw in ("true", "1", "on")
        settings = cls(
            enabled=enabled,
            collection=_text(values, "VISITOR_COLLECTION"),
            table=_text(values, "VISITOR_TABLE"),
            threshold=_number(values, "VISITOR_MATCH_THRESHOLD", DEFAULT_VISITOR_THRESHOLD, 0, 100),
            faces_max=int(_number(values, "VISITOR_FACES_MAX", visitor_rules.FACES_PER_VISITOR, 1, 100)),
            quality=visitor_rules.QualityRules(
                min_face_px=int(_number(values, "VISITOR_MIN_FACE_PX", visitor_rules.MIN_FACE_PX, 1, 4096))),
            retention_days=_number(values, "VISITOR_RETENTION_DAYS", visitor_rules.DEFAULT_RETENTION_DAYS, 1, 36500),
        )
        if enabled and not (settings.collection and settings.table):
            raise ConfigError("VISITORS=true needs VISITOR_COLLECTION and VISITOR_TABLE")
        return settings


@dataclass(frozen=True)
class SweepSettings:
    """The stalled-video sweeper's: the tracking table, frames bucket and track queue it
    cannot work without, and STALL_AFTER_S (default: contract.json's ``sweeper``)."""

    table: str
    frames_bucket: str
    track_queue_url: str
    stall_after_s: float

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> SweepSettings:
        stall = _number(values, "STALL_AFTER_S", float(contract.load()["sweeper"]["stall_after_s"]))
        missing = [k for k in ("TRACKING_TABLE", "FRAMES_BUCKET", "TRACK_QUEUE_URL") if not values.get(k)]
        if missing:
            raise ConfigError(f"the sweeper needs {', '.join(missing)}")
        return cls(table=values["TRACKING_TABLE"], frames_bucket=values["FRAMES_BUCKET"],
                   track_queue_url=values["TRACK_QUEUE_URL"], stall_after_s=stall)


#: The lowest default DetectFaces quota of any region (AWS's Rekognition quotas page).
DEFAULT_REKOGNITION_TPS = 5.0


@dataclass(frozen=True)
class RateSettings:
    """REKOGNITION_TPS: the Rekognition calls per second all of vidsift's instances may make
    together (default 5); each instance takes an equal share (vidsift.stages.rate)."""

    rekognition_tps: float = DEFAULT_REKOGNITION_TPS

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> RateSettings:
        raw = values.get("REKOGNITION_TPS") or ""
        tps = _number(values, "REKOGNITION_TPS", DEFAULT_REKOGNITION_TPS)
        if not 0 < tps <= 10000:
            raise ConfigError(f"REKOGNITION_TPS={raw!r}: expected a rate above 0 (calls per second)")
        return cls(rekognition_tps=tps)


@dataclass(frozen=True)
class RuntimeSettings:
    """What every handler's plumbing (vidsift.stages.runtime) uses, each optional: without
    IDEMPOTENCY_TABLE work simply runs (unit tests), without ANALYTICS_BUCKET a failure's
    reason is only logged; METRICS_NAMESPACE defaults to the service's name."""

    idempotency_table: str | None = None
    metrics_namespace: str = ""
    analytics_bucket: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> RuntimeSettings:
        return cls(idempotency_table=_text(values, "IDEMPOTENCY_TABLE"),
                   metrics_namespace=_text(values, "METRICS_NAMESPACE") or contract.load()["service"],
                   analytics_bucket=_text(values, "ANALYTICS_BUCKET"))


# --- the object ------------------------------------------------------------------------------

_parse_lock = threading.RLock()


class _Parsed(Generic[T]):
    """An attribute of :class:`Settings` parsed from its variables on first use, then kept.
    A failed parse is not kept: the next use (the next invocation) tries again. Parsed under a
    lock, so threads of one invocation share one parse (one read of the time-zone database)."""

    def __init__(self, parse: Callable[[Mapping[str, str]], T]) -> None:
        self.parse = parse
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _Parsed[T]: ...
    @overload
    def __get__(self, obj: Settings, objtype: type | None = None) -> T: ...

    def __get__(self, obj: Settings | None, objtype: type | None = None) -> T | _Parsed[T]:
        if obj is None:
            return self
        kept = obj.__dict__
        if self.name not in kept:
            with _parse_lock:
                if self.name not in kept:
                    kept[self.name] = self.parse(obj.values)
        return kept[self.name]  # type: ignore[no-any-return]


def _required_setting(name: str) -> _Parsed[str]:
    return _Parsed(lambda v: _required(v, name))


def _optional_setting(name: str) -> _Parsed[str | None]:
    return _Parsed(lambda v: _text(v, name))


def _number_setting(name: str, default: float) -> _Parsed[float]:
    return _Parsed(lambda v: _number(v, name, default))


def _int_setting(name: str, default: int) -> _Parsed[int]:
    return _Parsed(lambda v: int(_number(v, name, default)))


def _sample_mode(values: Mapping[str, str]) -> str:
    mode = values.get("SAMPLE_MODE") or "fps"
    if mode not in ("fps", "keyframes"):
        raise ConfigError(f"SAMPLE_MODE={mode!r}: expected 'fps' or 'keyframes'")
    return mode


@dataclass(frozen=True, eq=False)
class Settings:
    """A function's settings: the variables of contract.json's ``env`` as they were read,
    each setting and typed part parsed from them on first use (see the module's docstring).
    Build one from any mapping with :meth:`parse` (pure: tests, tools); a handler gets its
    process's with :meth:`from_env` (cached) and passes it down."""

    #: The variables, as read (contract.json's names only; unset ones absent).
    values: Mapping[str, str] = field(default_factory=dict, repr=False)

    # Shared by several stages, flat because most stages read a few of them.
    raw_bucket = _required_setting("RAW_BUCKET")
    frames_bucket = _required_setting("FRAMES_BUCKET")
    people_bucket = _required_setting("PEOPLE_BUCKET")
    analytics_bucket = _required_setting("ANALYTICS_BUCKET")
    people_stream = _required_setting("PEOPLE_STREAM")
    faces_stream = _required_setting("FACES_STREAM")
    endpoint_name = _required_setting("ENDPOINT_NAME")
    sample_fps = _number_setting("SAMPLE_FPS", 1.0)
    sample_mode = _Parsed(_sample_mode)
    jpeg_quality = _int_setting("JPEG_QUALITY", 90)
    max_frame_side = _int_setting("MAX_FRAME_SIDE", 1920)
    person_min_confidence = _Parsed(_person_min_confidence)
    #: The lowest score asked of the endpoint: boxes under person_min_confidence are the
    #: tracker's second pass only (vidsift.core.detection.Detection).
    person_track_confidence = _Parsed(_person_track_confidence)
    person_min_area = _number_setting("PERSON_MIN_AREA", 0.0)
    face_min_confidence = _number_setting("FACE_MIN_CONFIDENCE", 80.0)
    face_min_size = _number_setting("FACE_MIN_SIZE", 0.02)
    #: Tracking (vidsift.core.completion): its table, the tracks stream, and the two queues
    #: track_people is told on and tells analyze_faces on. Read by the stages that use them.
    tracking_table = _optional_setting("TRACKING_TABLE")
    tracks_stream = _optional_setting("TRACKS_STREAM")
    track_queue_url = _optional_setting("TRACK_QUEUE_URL")
    faces_queue_url = _optional_setting("FACES_QUEUE_URL")

    # Each stage's own part.
    split = _Parsed(SplitSettings.from_mapping)
    track = _Parsed(track_params)
    faces = _Parsed(FaceRule.from_mapping)
    alerts = _Parsed(AlertSettings.from_mapping)
    match = _Parsed(MatchSettings.from_mapping)
    visitors = _Parsed(VisitorSettings.from_mapping)
    sweep = _Parsed(SweepSettings.from_mapping)
    rate = _Parsed(RateSettings.from_mapping)
    runtime = _Parsed(RuntimeSettings.from_mapping)

    #: The shared settings, parsed by every handler's start-up check.
    SHARED = ("raw_bucket", "frames_bucket", "people_bucket", "analytics_bucket", "people_stream",
              "faces_stream", "endpoint_name", "sample_fps", "sample_mode", "jpeg_quality", "max_frame_side",
              "person_min_confidence", "person_track_confidence", "person_min_area", "face_min_confidence",
              "face_min_size", "tracking_table", "tracks_stream", "track_queue_url", "faces_queue_url")
    #: Every typed part.
    PARTS = ("split", "track", "faces", "alerts", "match", "visitors", "sweep", "rate", "runtime")

    @classmethod
    def parse(cls, values: Mapping[str, str]) -> Settings:
        """Settings from ``values`` (any mapping of variable names to strings), keeping only
        contract.json's names. Nothing is parsed yet: see :meth:`check`."""
        return cls(MappingProxyType({k: values[k] for k in ENV_NAMES if values.get(k) is not None}))

    @classmethod
    def from_env(cls) -> Settings:
        """This process's settings: contract.json's variables from ``os.environ``, parsed once
        per distinct set of values (a Lambda container's: once per cold start)."""
        return _cached(tuple(os.environ.get(name) for name in ENV_NAMES))

    def check(self, *parts: str) -> Settings:
        """Parse the shared settings and ``parts`` now (ConfigError naming the first bad
        variable); returns self, so a caller can check and keep in one step."""
        for name in (*self.SHARED, *parts):
            getattr(self, name)
        return self

    def need(self, name: str) -> str:
        """A tracking setting the calling stage cannot work without."""
        value = getattr(self, name)
        if not value:
            raise ConfigError(f"environment variable {name.upper()} is not set")
        return str(value)


_cache_lock = threading.Lock()


@lru_cache(maxsize=16)
def _cached_unlocked(values: tuple[str | None, ...]) -> Settings:
    return Settings.parse({k: v for k, v in zip(ENV_NAMES, values, strict=True) if v is not None})


def _cached(values: tuple[str | None, ...]) -> Settings:
    with _cache_lock:  # one object per environment, even when threads ask at once
        return _cached_unlocked(values)


def reset() -> None:
    """Forget every parsed setting, as a cold start would (tests). Changing a variable does
    not need it (the cache is keyed on the values); a test that patches how a value is
    parsed (the time-zone database, a rules file's content) does."""
    _cached_unlocked.cache_clear()

