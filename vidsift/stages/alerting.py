"""Alerts wired to AWS, for the handlers: vidsift.core.alerts decides, DynamoDB keeps the
state between invocations, S3 signs the frame link, SNS delivers.

Kept out of vidsift/core (which makes no AWS call) so the rules stay plain Python; the
state's table is vidsift.storage.alert_state, the other calls vidsift/aws.py. detect_people
calls :func:`on_person_frame`, analyze_faces :func:`on_faces`; with no rule of the kind
configured they return at once.
:func:`rules_configured` and :func:`face_rules_configured` let the stages skip an edge
snapshot (alert-only) that no rule could alert on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidsift import aws
from vidsift.core.alerts import Alert, Alerter, AlertSettings, MemoryStore, StateStore, face_sightings, person_sightings
from vidsift.core.records import FrameMeta
from vidsift.settings import Settings
from vidsift.storage.alert_state import DynamoAlertStateStore

#: Without ALERT_TABLE (a local run of one process) the state stays in this process.
_memory_store = MemoryStore()


def alert_settings() -> AlertSettings:
    """The alert settings, parsed once per cold start (the settings object keeps its parts:
    vidsift.settings), not once per frame: parsing reads the time-zone database and the
    rules, and a transient failure there used to fail the frame it happened on (issue 26).
    A failed parse is not kept, so it is tried again by the next invocation."""
    return Settings.from_env().alerts


def alerter(settings: AlertSettings | None = None) -> Alerter:
    """An Alerter from the alert settings: ALERT_TABLE's state, ALERT_TOPIC_ARN's topic."""
    settings = settings or alert_settings()
    store: StateStore = DynamoAlertStateStore(settings.table) if settings.table else _memory_store
    topic = settings.topic_arn or ""

    def publish(alert: Alert) -> str:
        return aws.publish(topic, subject=alert.subject, messages=alert.messages(), attributes=alert.attributes)

    return Alerter(settings, store, publish, aws.presign_get)


def rules_configured() -> bool:
    """Any alert rule at all: without one, an edge snapshot (alert-only) has nothing to do."""
    return bool(alert_settings().rules)


def face_rules_configured() -> bool:
    """Any face rule: without one, analyze_faces has nothing to do for an alert-only frame."""
    return any(r.when != "person" for r in alert_settings().rules)


def on_person_frame(meta: FrameMeta, detection: Any, bucket: str, key: str) -> int:
    """detect_people, for a frame with people copied to ``bucket``/``key``: alerts sent."""
    parsed = alert_settings()
    if not any(r.when == "person" for r in parsed.rules):
        return 0
    sightings = person_sightings(meta, detection.person_count, detection.max_confidence, bucket, key)
    return len(alerter(parsed).process(sightings))


def on_faces(meta: FrameMeta, bucket: str, key: str, records: Sequence[dict[str, Any]], *, searched: bool) -> int:
    """analyze_faces, for a frame's face rows (with their matches): alerts sent."""
    parsed = alert_settings()
    if not any(r.when != "person" for r in parsed.rules):
        return 0
    return len(alerter(parsed).process(face_sightings(meta, records, bucket, key, searched=searched)))
