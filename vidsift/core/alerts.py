"""Alerts: a watch list of rules, debounced and cooled down, published to an SNS topic.

The rules (env ``ALERT_RULES``: JSON text, or the path of a JSON file) say what to alert on,
per camera::

    {"rules": [
      {"name": "door-person", "when": "person", "camera": "front-door", "min_confidence": 70,
       "detections": 3, "window_s": 20, "cooldown_s": 300},
      {"name": "family", "when": "face_match", "camera": "*", "people": ["Ada Lovelace"]},
      {"name": "stranger", "when": "face_unknown", "camera": ["door", "yard-*"], "min_confidence": 95}
    ]}

* ``when``: ``person`` (a frame with people, from detect_people), ``face_match`` (a face that
  matched a known person, from analyze_faces; ``people`` restricts it to some names) or
  ``face_unknown`` (a face that matched nobody; only when a face collection is configured).
* ``camera``: a camera id, a shell-style pattern (``yard-*``) or ``*``; or a list of them.
* ``min_confidence`` (percent): the person detector's confidence for ``person``, the match
  similarity for ``face_match``, the face detection confidence for ``face_unknown``.
* No flooding: a rule fires after ``detections`` frames (default 1) within ``window_s``
  seconds (default 60), then stays quiet for ``cooldown_s`` seconds (default 300) per rule,
  camera and kind (and per person for ``face_match``). Times are the frames' capture times
  when known (the recording's clock), else when they were processed.

This module is plain Python, no AWS call (:func:`parse_rules`, :func:`decide`,
:func:`build_alert`, :class:`Alerter` with its store and publisher given). The state lives in a
:class:`StateStore`, which must refuse a write when someone wrote since the read, so
concurrent invocations cannot both fire. :mod:`vidsift.stages.alerting` wires this to DynamoDB
and SNS for the handlers; with no rules configured it reads and writes nothing.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vidsift import contract
from vidsift.core import keys
from vidsift.core.errors import ConfigError
from vidsift.core.records import FrameMeta, iso, parse_iso

log = logging.getLogger(__name__)
#: Not ``datetime.UTC`` (3.11+): vidsift/deploy/checks.py imports this module on the deploy
#: machine's python3, which may be 3.9 (tests/test_deploy_python.py checks the import closure).
UTC = timezone.utc  # noqa: UP017

KINDS = ("person", "face_match", "face_unknown")
_RULE_KEYS = {"name", "when", "camera", "min_confidence", "people", "detections", "window_s", "cooldown_s"}
DEFAULT_LINK_EXPIRY_S = 3600
#: SigV4 presigned URLs last at most 7 days.
MAX_LINK_EXPIRY_S = 7 * 24 * 3600
#: State records outlive their window and cool-down by a day, then DynamoDB's TTL removes them.
STATE_TTL_MARGIN_S = 24 * 3600
#: Optimistic-concurrency retries when another invocation wrote the same key meanwhile.
STATE_ATTEMPTS = 8


def topic_name(names: contract.ResourceNames) -> str:
    return f"{names.prefix}-{contract.load()['alert_topic']}"


def table_name(names: contract.ResourceNames) -> str:
    return f"{names.prefix}-{contract.load()['alert_table']}"


# --- rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One watch-list rule (alertRules): what must be seen, on which cameras, how often within a
    window, and how long to stay quiet after firing, so a person lingering in view alerts once."""

    name: str
    when: str
    cameras: tuple[str, ...] = ("*",)
    min_confidence: float = 0.0
    people: tuple[str, ...] = ()
    detections: int = 1
    window_s: float = 60.0
    cooldown_s: float = 300.0

    def applies(self, sighting: Sighting) -> bool:
        return (sighting.kind == self.when
                and any(fnmatch.fnmatchcase(sighting.camera_id, c) for c in self.cameras)
                and sighting.confidence >= self.min_confidence
                and (not self.people or sighting.name in self.people))

    def state_key(self, sighting: Sighting) -> str:
        """Debounce and cool-down are kept per rule, camera and kind (and person)."""
        parts = ["alert", self.name, sighting.camera_id, sighting.kind]
        if sighting.kind == "face_match":
            parts.append(sighting.name or "")
        return "#".join(p.replace("#", "%23") for p in parts)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"{what} must be a non-empty string or list of strings, got {value!r}")
    return tuple(items)


def _number(rule: dict[str, Any], key: str, default: float, lo: float, hi: float, what: str) -> float:
    value = rule.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"{what}: {key}={value!r}, expected a number in [{lo}, {hi}]")
    return float(value)


def parse_rules(doc: Any) -> tuple[Rule, ...]:
    """Rules from the parsed JSON: a list of rules or ``{"rules": [...]}``; every mistake
    (unknown key, kind, bad number) is a ConfigError naming the rule, never a silent no-op."""
    if isinstance(doc, dict):
        unknown = set(doc) - {"rules"}
        if unknown:
            raise ConfigError(f"ALERT_RULES: unknown top-level keys {sorted(unknown)} (expected 'rules')")
        doc = doc.get("rules", [])
    if not isinstance(doc, list):
        raise ConfigError("ALERT_RULES must be a JSON list of rules or {\"rules\": [...]}")
    rules: list[Rule] = []
    for i, raw in enumerate(doc):
        if not isinstance(raw, dict):
            raise ConfigError(f"ALERT_RULES rule {i}: expected an object, got {raw!r}")
        what = f"ALERT_RULES rule {raw.get('name', i)!r}"
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise ConfigError(f"{what}: unknown keys {sorted(unknown)} (known: {sorted(_RULE_KEYS)})")
        when = raw.get("when")
        if when not in KINDS:
            raise ConfigError(f"{what}: when={when!r}, expected one of {list(KINDS)}")
        people = _strings(raw["people"], f"{what}: people") if "people" in raw else ()
        if people and when != "face_match":
            raise ConfigError(f"{what}: 'people' applies to face_match rules only")
        detections = _number(raw, "detections", 1, 1, 1000, what)
        if detections != int(detections):
            raise ConfigError(f"{what}: detections must be a whole number")
        rules.append(Rule(
            name=str(raw.get("name") or f"{when}-{i}"), when=when,
            cameras=_strings(raw.get("camera", "*"), f"{what}: camera"),
            min_confidence=_number(raw, "min_confidence", 0, 0, 100, what), people=people,
            detections=int(detections), window_s=_number(raw, "window_s", 60, 0.001, 86400, what),
            cooldown_s=_number(raw, "cooldown_s", 300, 0, 30 * 86400, what),
        ))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"ALERT_RULES: rule names must be unique, got {names}")
    return tuple(rules)


@lru_cache(maxsize=8)
def _rules_from_text(text: str) -> tuple[Rule, ...]:
    try:
        return parse_rules(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"ALERT_RULES is not valid JSON: {exc}") from exc


def load_rules(value: str | None) -> tuple[Rule, ...]:
    """ALERT_RULES: JSON text (starts with ``[`` or ``{``) or the path of a JSON file."""
    value = (value or "").strip()
    if not value:
        return ()
    if value[0] in "[{":
        return _rules_from_text(value)
    path = Path(value).expanduser()
    try:
        return _rules_from_text(path.read_text())
    except OSError as exc:
        raise ConfigError(f"ALERT_RULES={value!r}: neither JSON nor a readable file ({exc})") from exc


@dataclass(frozen=True)
class AlertSettings:
    """The alert watch list and where alerts go: ALERT_RULES, ALERT_TOPIC_ARN, ALERT_TABLE,
    ALERT_TIMEZONE (the time zone messages show times in) and ALERT_LINK_EXPIRY_S."""

    rules: tuple[Rule, ...]
    timezone: ZoneInfo
    link_expiry_s: int
    topic_arn: str | None
    table: str | None

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> AlertSettings:
        """From the function's variables (vidsift.settings passes them, once per cold start;
        the core reads no environment): ConfigError naming the variable or rule at fault."""
        tz_name = values.get("ALERT_TIMEZONE") or "UTC"
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"ALERT_TIMEZONE={tz_name!r} is not an IANA time zone (e.g. Europe/Paris)") from exc
        raw = values.get("ALERT_LINK_EXPIRY_S") or str(DEFAULT_LINK_EXPIRY_S)
        try:
            expiry = int(raw)
        except ValueError as exc:
            raise ConfigError(f"ALERT_LINK_EXPIRY_S={raw!r} is not a whole number of seconds") from exc
        if not 1 <= expiry <= MAX_LINK_EXPIRY_S:
            raise ConfigError(f"ALERT_LINK_EXPIRY_S={raw!r}: expected 1-{MAX_LINK_EXPIRY_S} (SigV4's 7 days)")
        rules = load_rules(values.get("ALERT_RULES"))
        topic = values.get("ALERT_TOPIC_ARN") or None
        if rules and not topic:
            raise ConfigError("ALERT_RULES is set but ALERT_TOPIC_ARN is not: alerts would have nowhere to go")
        return cls(rules=rules, timezone=tz, link_expiry_s=expiry, topic_arn=topic,
                   table=values.get("ALERT_TABLE") or None)


# --- what was seen --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    """One frame's evidence for one kind of alert (all unknown faces of a frame are one
    sighting; each known person is one)."""

    kind: str
    camera_id: str
    at: datetime
    confidence: float
    count: int
    bucket: str
    key: str
    frame_id: str
    video_id: str
    source_key: str
    frame_index: int
    frame_time_s: float
    name: str | None = None
    #: An edge snapshot (alert fast lane): its clip, when the edge named it, follows.
    alert_only: bool = False
    clip_key: str | None = None


def _seen_at(meta: FrameMeta, now: datetime | None) -> datetime:
    return parse_iso(meta.captured_at) or now or datetime.now(UTC)


def person_sightings(meta: FrameMeta, person_count: int, max_confidence: float | None, bucket: str, key: str,
                     now: datetime | None = None) -> list[Sighting]:
    """detect_people's frame; its confidence is 0-1, rules speak percent."""
    if person_count <= 0:
        return []
    return [Sighting("person", meta.camera_id, _seen_at(meta, now), round(100.0 * float(max_confidence or 0), 2),
                     person_count, bucket, key, keys.frame_key(meta.video_id, meta.frame_index), meta.video_id,
                     meta.source_key, meta.frame_index, meta.frame_time_s, alert_only=meta.alert_only,
                     clip_key=meta.clip_key)]


def face_sightings(meta: FrameMeta, records: Sequence[dict[str, Any]], bucket: str, key: str, *, searched: bool,
                   now: datetime | None = None) -> list[Sighting]:
    """analyze_faces's rows: one sighting per known person, one for all unknown faces."""
    at = _seen_at(meta, now)
    frame_id = keys.frame_key(meta.video_id, meta.frame_index)
    base = {"camera_id": meta.camera_id, "at": at, "bucket": bucket, "key": key, "frame_id": frame_id,
            "video_id": meta.video_id, "source_key": meta.source_key, "frame_index": meta.frame_index,
            "frame_time_s": meta.frame_time_s, "alert_only": meta.alert_only, "clip_key": meta.clip_key}
    known: dict[str, list[float]] = {}
    unknown: list[float] = []
    for rec in records:
        if rec.get("matched_name"):
            known.setdefault(rec["matched_name"], []).append(float(rec.get("match_similarity") or 0))
        elif searched:
            unknown.append(float(rec.get("confidence") or 0))
    out = [Sighting(kind="face_match", confidence=max(sims), count=len(sims), name=name, **base)
           for name, sims in sorted(known.items())]
    if unknown:
        out.append(Sighting(kind="face_unknown", confidence=max(unknown), count=len(unknown), **base))
    return out


# --- debounce and cool-down -----------------------------------------------------------------


@dataclass
class State:
    """What one rule remembers for one camera and kind, between invocations.

    ``hits``: frame id -> time (epoch s) of recent sightings, so a replayed frame is not
    counted twice and frames arriving out of order still count. ``pending``: the frame whose
    alert was decided but not yet confirmed published (a retry of that frame publishes it).
    """

    hits: dict[str, float] = field(default_factory=dict)
    last_alert: float | None = None
    pending: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {"hits": self.hits, "last_alert": self.last_alert, "pending": self.pending}

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> State:
        doc = doc or {}
        return cls(hits={str(k): float(v) for k, v in (doc.get("hits") or {}).items()},
                   last_alert=doc.get("last_alert"), pending=doc.get("pending"))


def _max_in_window(times: Iterable[float], t: float, window_s: float) -> int:
    """The most hits in any window of ``window_s`` seconds that contains ``t``."""
    near = sorted(x for x in times if abs(x - t) <= window_s)
    best = 0
    for i, start in enumerate(near):
        if start > t:
            break
        if start + window_s < t:
            continue
        best = max(best, sum(1 for x in near[i:] if x <= start + window_s))
    return best


def decide(state: State, rule: Rule, frame_id: str, t: float) -> tuple[State, bool]:
    """(new state, fire?) after a sighting at ``t`` (epoch seconds) in frame ``frame_id``.

    Fires when the rule's ``detections`` sightings fall within ``window_s`` of each other
    (this one included) and the last alert of this key is at least ``cooldown_s`` older
    than ``t``. A sighting older than the last alert (a frame arriving late) never fires.
    The same frame seen again counts once; if its alert was decided but never confirmed
    published, seeing it again fires again (that is the retry after a failed publish).
    """
    if state.pending == frame_id:
        return state, True
    hits = dict(state.hits)
    hits[frame_id] = t
    newest = max(hits.values())
    # Keep what can still matter: the window around the newest sightings, bounded in size.
    kept = sorted(((v, k) for k, v in hits.items() if v >= newest - 2 * rule.window_s), reverse=True)
    hits = {k: v for v, k in kept[: max(4 * rule.detections, 16)]}
    new = State(hits=hits, last_alert=state.last_alert, pending=state.pending)
    if state.last_alert is not None and t < state.last_alert + rule.cooldown_s:
        return new, False
    if _max_in_window(hits.values(), t, rule.window_s) < rule.detections:
        return new, False
    new.last_alert, new.pending = t, frame_id
    return new, True


class StateStore(Protocol):
    """Where rule windows and cool-downs are kept between invocations, with a version per key:
    Lambda containers share nothing, so the state must live outside them and concurrent
    updates must not overwrite each other (DynamoDB in the cloud, MemoryStore in a test)."""

    def get(self, key: str) -> tuple[dict[str, Any] | None, int]: ...

    def put(self, key: str, doc: dict[str, Any], *, expected_version: int, expires_at: int) -> bool: ...


class MemoryStore:
    """Process memory with DynamoDB's conditional-write semantics: for one process (unit
    tests, a local run without ALERT_TABLE), never for Lambda, whose containers share nothing."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[dict[str, Any], int]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[dict[str, Any] | None, int]:
        with self._lock:
            doc, version = self._items.get(key, (None, 0))
            return (json.loads(json.dumps(doc)) if doc is not None else None), version

    def put(self, key: str, doc: dict[str, Any], *, expected_version: int, expires_at: int) -> bool:
        with self._lock:
            if self._items.get(key, (None, 0))[1] != expected_version:
                return False
            self._items[key] = (json.loads(json.dumps(doc)), expected_version + 1)
            return True


def _update(store: StateStore, key: str, change: Callable[[State], tuple[State, Any]], ttl_s: float) -> Any:
    """Read, change, conditionally write; again on a lost race. Returns ``change``'s verdict."""
    for _ in range(STATE_ATTEMPTS):
        doc, version = store.get(key)
        old = State.from_doc(doc)
        new, verdict = change(old)
        if doc is not None and new.to_doc() == old.to_doc():
            return verdict  # nothing to write (a replayed, already counted frame)
        if store.put(key, new.to_doc(), expected_version=version, expires_at=int(time.time() + ttl_s)):
            return verdict
    raise RuntimeError(f"alert state {key}: still contended after {STATE_ATTEMPTS} attempts")


# --- the message --------------------------------------------------------------------------


def format_time(at: datetime, tz: ZoneInfo) -> str:
    """``2026-05-01 10:00:03 CEST (UTC+02:00, Europe/Paris)``: what a person reads."""
    local = at.astimezone(tz)
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} ({offset}, {tz.key})"


def what_was_seen(s: Sighting) -> str:
    if s.kind == "person":
        people = "1 person" if s.count == 1 else f"{s.count} people"
        return f"{people} (detector confidence {s.confidence:.0f}%)"
    if s.kind == "face_match":
        return f"{s.name} (face match, similarity {s.confidence:.1f}%)"
    faces = "a face" if s.count == 1 else f"{s.count} faces"
    return f"{faces} matching no known person (face confidence {s.confidence:.1f}%)"


def _ascii(text: str) -> str:
    """SNS subjects: printable ASCII, no line breaks, under 100 characters."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    clean = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in folded).strip()
    return (clean or "vidsift alert")[:99]


def _origin(s: Sighting) -> str:
    """Where the frame comes from: a video's frame, or the edge's snapshot and its clip."""
    if s.alert_only:
        clip = f"; its clip {s.clip_key} follows" if s.clip_key else ""
        return f"Edge snapshot: {s.source_key}{clip}"
    return f"Video: {s.source_key}, frame {s.frame_index} at {s.frame_time_s:g} s"


@dataclass(frozen=True)
class Alert:
    """One alert, rendered for every channel SNS delivers to at once (mail text, a short SMS,
    JSON for programs) plus the message attributes subscribers filter on."""

    subject: str
    text: str
    sms: str
    doc: dict[str, Any]
    attributes: dict[str, str]

    def messages(self) -> dict[str, str]:
        """SNS's per-protocol messages: text for people (email, SMS), JSON for programs."""
        body = json.dumps(self.doc, ensure_ascii=False, sort_keys=True)
        return {"default": self.text, "email": self.text, "sms": self.sms,
                "sqs": body, "lambda": body, "http": body, "https": body, "firehose": body}


def build_alert(rule: Rule, s: Sighting, *, link: str, tz: ZoneInfo, link_expiry_s: int,
                now: datetime) -> Alert:
    what = what_was_seen(s)
    when = format_time(s.at, tz)
    short = {"person": "person", "face_match": s.name or "known face", "face_unknown": "unknown face"}[s.kind]
    subject = _ascii(f"vidsift: {short} at camera {s.camera_id}")
    expires = datetime.fromtimestamp(now.timestamp() + link_expiry_s, UTC)
    window = (f"{rule.detections} frames within {rule.window_s:g} s" if rule.detections > 1 else "1 frame")
    text = "\n".join([
        f"Camera: {s.camera_id}",
        f"When: {when}",
        f"Seen: {what}",
        f"Frame: {link}",
        f"(link valid until {format_time(expires, tz)})",
        _origin(s),
        f"Rule: {rule.name} ({window}; quiet for {rule.cooldown_s:g} s after an alert)",
    ])
    local = s.at.astimezone(tz)
    sms = f"{short} at {s.camera_id}, {local:%H:%M:%S} {local.tzname()}: {link}"
    doc = {
        "rule": rule.name, "kind": s.kind, "camera_id": s.camera_id, "seen": what,
        "seen_at": iso(s.at), "seen_at_local": local.isoformat(timespec="seconds"), "timezone": tz.key,
        "count": s.count, "confidence": s.confidence, "matched_name": s.name if s.kind == "face_match" else None,
        "frame": {"bucket": s.bucket, "key": s.key, "url": link, "url_expires_at": iso(expires)},
        "video_id": s.video_id, "source_key": s.source_key, "frame_index": s.frame_index,
        "frame_time_s": s.frame_time_s, "snapshot": s.alert_only, "clip_key": s.clip_key,
    }
    attributes = {"camera_id": s.camera_id, "kind": s.kind, "rule": rule.name}
    if s.kind == "face_match" and s.name:
        attributes["person"] = s.name
    return Alert(subject, text, sms, doc, attributes)


# --- deciding and publishing ------------------------------------------------------------------


@dataclass
class Alerter:
    """Rules + state + publishing, each given: :mod:`vidsift.stages.alerting` builds one from the
    environment with DynamoDB and SNS (what the handlers call), tests with MemoryStore."""

    settings: AlertSettings
    store: StateStore
    publish: Callable[[Alert], str]
    presign: Callable[[str, str, int], str]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def process(self, sightings: Sequence[Sighting]) -> list[Alert]:
        """Count each sighting against the rules it matches; publish what fires."""
        sent: list[Alert] = []
        for s in sightings:
            for rule in self.settings.rules:
                if not rule.applies(s):
                    continue
                key = rule.state_key(s)
                t = s.at.timestamp()
                ttl = max(rule.window_s * 2, rule.cooldown_s) + STATE_TTL_MARGIN_S
                if not _update(self.store, key, lambda st, r=rule, f=s.frame_id, t=t: decide(st, r, f, t), ttl):
                    continue
                now = self.clock()
                link = self.presign(s.bucket, s.key, self.settings.link_expiry_s)
                alert = build_alert(rule, s, link=link, tz=self.settings.timezone,
                                    link_expiry_s=self.settings.link_expiry_s, now=now)
                message_id = self.publish(alert)
                # Confirmed: a replay of this frame must not publish it again.
                _update(self.store, key, lambda st, f=s.frame_id: (
                    replace(st, pending=None) if st.pending == f else st, None), ttl)
                log.info("alert published", extra={"rule": rule.name, "camera": s.camera_id, "kind": s.kind,
                                                   "message_id": message_id})
                sent.append(alert)
        return sent
