"""Alerts wired to AWS, for the handlers: vidsift.core.alerts decides, DynamoDB keeps the
state between invocations, S3 signs the frame link, SNS delivers.

Kept out of vidsift/core (which makes no AWS call) so the rules stay plain Python; the
calls themselves are in vidsift/aws.py. detect_people calls :func:`on_person_frame`,
analyze_faces :func:`on_faces`; with no rule of the kind configured they return at once.
:func:`rules_configured` and :func:`face_rules_configured` let the stages skip an edge
snapshot (alert-only) that no rule could alert on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidsift import aws
from vidsift.core.alerts import Alert, Alerter, AlertSettings, MemoryStore, StateStore, face_sightings, person_sightings
from vidsift.core.records import FrameMeta

#: Without ALERT_TABLE (a local run of one process) the state stays in this process.
_memory_store = MemoryStore()


class DynamoStore:
    """The alert-state table: one item per key, conditional writes on a version number."""

    def __init__(self, table: str) -> None:
        self.table = table

    def get(self, key: str) -> tuple[dict[str, Any] | None, int]:
        return aws.alert_state_get(self.table, key)

    def put(self, key: str, doc: dict[str, Any], *, expected_version: int, expires_at: int) -> bool:
        return aws.alert_state_put(self.table, key, doc, expected_version=expected_version, expires_at=expires_at)


def alerter(settings: AlertSettings | None = None) -> Alerter:
    """An Alerter from the environment: ALERT_TABLE's state, ALERT_TOPIC_ARN's topic."""
    settings = settings or AlertSettings.from_env()
    store: StateStore = DynamoStore(settings.table) if settings.table else _memory_store
    topic = settings.topic_arn or ""

    def publish(alert: Alert) -> str:
        return aws.publish(topic, subject=alert.subject, messages=alert.messages(), attributes=alert.attributes)

    return Alerter(settings, store, publish, aws.presign_get)


def rules_configured() -> bool:
    """Any alert rule at all: without one, an edge snapshot (alert-only) has nothing to do."""
    return bool(AlertSettings.from_env().rules)


def face_rules_configured() -> bool:
    """Any face rule: without one, analyze_faces has nothing to do for an alert-only frame."""
    return any(r.when != "person" for r in AlertSettings.from_env().rules)


def on_person_frame(meta: FrameMeta, detection: Any, bucket: str, key: str) -> int:
    """detect_people, for a frame with people copied to ``bucket``/``key``: alerts sent."""
    settings = AlertSettings.from_env()
    if not any(r.when == "person" for r in settings.rules):
        return 0
    sightings = person_sightings(meta, detection.person_count, detection.max_confidence, bucket, key)
    return len(alerter(settings).process(sightings))


def on_faces(meta: FrameMeta, bucket: str, key: str, records: Sequence[dict[str, Any]], *, searched: bool) -> int:
    """analyze_faces, for a frame's face rows (with their matches): alerts sent."""
    settings = AlertSettings.from_env()
    if not any(r.when != "person" for r in settings.rules):
        return 0
    return len(alerter(settings).process(face_sightings(meta, records, bucket, key, searched=searched)))
