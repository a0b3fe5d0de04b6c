"""The alert rules as plain Python: parsing, debounce, cool-down, time zones, the message.

State goes through MemoryStore, which keeps DynamoAlertStateStore's version semantics; the SNS and
DynamoDB side is in tests/test_alerts_sns.py.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from vidsift.core import alerts
from vidsift.core.alerts import Alert, Alerter, AlertSettings, MemoryStore, Rule, Sighting, State, decide
from vidsift.core.errors import ConfigError
from vidsift.core.records import FrameMeta

T0 = datetime(2026, 3, 29, 0, 30, 0, tzinfo=UTC)  # 01:30 CET; at 01:00 UTC Paris moves to CEST


def meta(camera: str = "door", index: int = 0, at: datetime | None = T0) -> FrameMeta:
    return FrameMeta(video_id="vid", source_bucket="raw", source_key="uploads/clip.mp4", camera_id=camera,
                     frame_index=index, frame_time_s=float(index),
                     captured_at=at.isoformat().replace("+00:00", "Z") if at else None)


def sighting(kind: str = "person", camera: str = "door", seconds: float = 0, confidence: float = 90,
             frame: str | None = None, name: str | None = None, count: int = 1) -> Sighting:
    at = T0 + timedelta(seconds=seconds)
    return Sighting(kind, camera, at, confidence, count, "people-bucket", f"vid/{seconds:06.0f}.jpg",
                    frame or f"vid/{seconds:06.0f}.jpg", "vid", "uploads/clip.mp4", int(seconds), float(seconds),
                    name)


# --- parsing ---------------------------------------------------------------------------------


def test_rules_parse_with_defaults_and_lists() -> None:
    rules = alerts.parse_rules({"rules": [
        {"when": "person"},
        {"name": "family", "when": "face_match", "camera": ["door", "yard-*"], "people": ["Ada"],
         "min_confidence": 95, "detections": 2, "window_s": 10, "cooldown_s": 60},
    ]})
    assert rules[0] == Rule(name="person-0", when="person")
    assert rules[0].cameras == ("*",) and rules[0].detections == 1 and rules[0].cooldown_s == 300
    assert rules[1].cameras == ("door", "yard-*") and rules[1].people == ("Ada",) and rules[1].window_s == 10


@pytest.mark.parametrize(("doc", "message"), [
    ([{"when": "cat"}], "when='cat'"),
    ([{"when": "person", "camra": "door"}], "unknown keys ['camra']"),
    ([{"when": "person", "detections": 0}], "detections=0"),
    ([{"when": "person", "detections": 1.5}], "whole number"),
    ([{"when": "person", "min_confidence": 101}], "min_confidence=101"),
    ([{"when": "person", "people": ["Ada"]}], "face_match rules only"),
    ([{"when": "person", "camera": []}], "camera"),
    ([{"name": "a", "when": "person"}, {"name": "a", "when": "face_match"}], "unique"),
    ({"rulez": []}, "unknown top-level keys"),
    ("person", "JSON list"),
])
def test_rule_mistakes_are_named(doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        alerts.parse_rules(doc)


def test_rules_from_env_json_or_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t")
    monkeypatch.setenv("ALERT_RULES", '[{"when": "person"}]')
    assert [r.when for r in AlertSettings.from_mapping(os.environ).rules] == ["person"]
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps({"rules": [{"when": "face_unknown", "camera": "gate"}]}))
    monkeypatch.setenv("ALERT_RULES", str(path))
    assert AlertSettings.from_mapping(os.environ).rules[0].cameras == ("gate",)
    monkeypatch.setenv("ALERT_RULES", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="neither JSON nor a readable file"):
        AlertSettings.from_mapping(os.environ)
    monkeypatch.setenv("ALERT_RULES", "[{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        AlertSettings.from_mapping(os.environ)


def test_settings_defaults_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ALERT_RULES", "ALERT_TIMEZONE", "ALERT_LINK_EXPIRY_S", "ALERT_TOPIC_ARN", "ALERT_TABLE"):
        monkeypatch.delenv(key, raising=False)
    s = AlertSettings.from_mapping(os.environ)
    assert s.rules == () and s.timezone.key == "UTC" and s.link_expiry_s == 3600
    monkeypatch.setenv("ALERT_RULES", '[{"when": "person"}]')
    with pytest.raises(ConfigError, match="ALERT_TOPIC_ARN"):
        AlertSettings.from_mapping(os.environ)
    monkeypatch.setenv("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t")
    monkeypatch.setenv("ALERT_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="IANA"):
        AlertSettings.from_mapping(os.environ)
    monkeypatch.setenv("ALERT_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("ALERT_LINK_EXPIRY_S", "604801")
    with pytest.raises(ConfigError, match="7 days"):
        AlertSettings.from_mapping(os.environ)


def test_rule_applies_per_camera_pattern_confidence_and_person() -> None:
    rule = Rule(name="r", when="face_match", cameras=("yard-*", "door"), min_confidence=95, people=("Ada",))
    assert rule.applies(sighting("face_match", "yard-east", confidence=96, name="Ada"))
    assert rule.applies(sighting("face_match", "door", confidence=95, name="Ada"))
    assert not rule.applies(sighting("face_match", "garage", confidence=99, name="Ada"))
    assert not rule.applies(sighting("face_match", "door", confidence=94.9, name="Ada"))
    assert not rule.applies(sighting("face_match", "door", confidence=99, name="Bob"))
    assert not rule.applies(sighting("person", "door", confidence=99))


# --- debounce and cool-down -----------------------------------------------------------------


def run(rule: Rule, times: list[float], state: State | None = None) -> tuple[list[bool], State]:
    state = state or State()
    fired = []
    for t in times:
        state, fire = decide(state, rule, f"f{t:g}", t)
        if fire:
            state.pending = None  # published and confirmed
        fired.append(fire)
    return fired, state


def test_fires_only_after_n_detections_within_the_window() -> None:
    rule = Rule(name="r", when="person", detections=3, window_s=10, cooldown_s=0)
    assert run(rule, [0, 5, 9])[0] == [False, False, True]
    assert run(rule, [0, 11, 22, 33])[0] == [False, False, False, False]  # never 3 within 10 s
    assert run(rule, [0, 11, 15, 18])[0] == [False, False, False, True]


def test_cooldown_per_key_then_fires_again() -> None:
    rule = Rule(name="r", when="person", detections=1, window_s=10, cooldown_s=60)
    fired, _ = run(rule, [0, 1, 30, 59.9, 60, 61, 125])
    assert fired == [True, False, False, False, True, False, True]


def test_frames_arriving_out_of_order_still_count_and_late_ones_never_fire() -> None:
    rule = Rule(name="r", when="person", detections=3, window_s=10, cooldown_s=60)
    fired, state = run(rule, [8, 2, 5])  # processed in parallel: 5 arrives last, completes 2-5-8
    assert fired == [False, False, True]
    late, _ = run(rule, [4], state)  # older than the alert: part of the same incident
    assert late == [False]


def test_a_replayed_frame_counts_once() -> None:
    rule = Rule(name="r", when="person", detections=2, window_s=10, cooldown_s=0)
    state = State()
    for _ in range(3):
        state, fire = decide(state, rule, "same-frame", 1.0)
        assert not fire
    assert list(state.hits) == ["same-frame"]


def test_an_unconfirmed_alert_fires_again_on_retry_of_its_frame_only() -> None:
    rule = Rule(name="r", when="person", detections=1, window_s=10, cooldown_s=300)
    state, fire = decide(State(), rule, "f1", 0.0)
    assert fire and state.pending == "f1"  # decided, then publishing failed: no confirmation
    _, other = decide(state, rule, "f2", 1.0)
    assert not other  # in cool-down
    _, again = decide(state, rule, "f1", 0.0)
    assert again  # the retry of the same frame publishes it


def test_state_is_bounded() -> None:
    rule = Rule(name="r", when="person", detections=2, window_s=5, cooldown_s=0)
    _, state = run(rule, [float(t) for t in range(0, 1000, 3)])
    assert len(state.hits) <= 16 and max(state.hits.values()) == 999


# --- time zones and the message ----------------------------------------------------------------


def test_format_time_follows_the_zone_and_its_daylight_saving() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert alerts.format_time(T0, paris) == "2026-03-29 01:30:00 CET (UTC+01:00, Europe/Paris)"
    assert alerts.format_time(T0 + timedelta(hours=1), paris) == "2026-03-29 03:30:00 CEST (UTC+02:00, Europe/Paris)"
    assert alerts.format_time(T0, ZoneInfo("UTC")) == "2026-03-29 00:30:00 UTC (UTC+00:00, UTC)"
    assert alerts.format_time(T0, ZoneInfo("Asia/Kolkata")).startswith("2026-03-29 06:00:00 IST (UTC+05:30")


def test_message_names_camera_time_what_and_link() -> None:
    rule = Rule(name="door", when="person", detections=3, window_s=20, cooldown_s=300)
    s = sighting("person", "Vorderhaus Tür", seconds=0, confidence=97.4, count=2)
    alert = alerts.build_alert(rule, s, link="https://example.test/frame?sig=1", tz=ZoneInfo("Europe/Berlin"),
                               link_expiry_s=3600, now=T0)
    assert alert.subject == "vidsift: person at camera Vorderhaus Tur"  # SNS subjects are ASCII
    assert "Camera: Vorderhaus Tür" in alert.text
    assert "When: 2026-03-29 01:30:00 CET (UTC+01:00, Europe/Berlin)" in alert.text
    assert "Seen: 2 people (detector confidence 97%)" in alert.text
    assert "Frame: https://example.test/frame?sig=1" in alert.text
    assert "link valid until 2026-03-29 03:30:00 CEST" in alert.text
    assert "3 frames within 20 s" in alert.text
    doc = json.loads(alert.messages()["sqs"])
    assert doc["camera_id"] == "Vorderhaus Tür" and doc["seen_at"] == "2026-03-29T00:30:00.000Z"
    assert doc["seen_at_local"] == "2026-03-29T01:30:00+01:00" and doc["frame"]["url_expires_at"] == (
        "2026-03-29T01:30:00.000Z")
    assert alert.messages()["default"] == alert.text and len(alert.subject) < 100
    assert alert.attributes == {"camera_id": "Vorderhaus Tür", "kind": "person", "rule": "door"}


def test_face_sightings_group_a_frames_faces() -> None:
    records = [{"matched_name": "Ada", "match_similarity": 97.0, "confidence": 99.0},
               {"matched_name": None, "match_similarity": None, "confidence": 99.5},
               {"matched_name": "Ada", "match_similarity": 99.0, "confidence": 98.0},
               {"matched_name": None, "match_similarity": None, "confidence": 91.0}]
    found = alerts.face_sightings(meta(), records, "b", "k", searched=True)
    assert [(s.kind, s.name, s.count, s.confidence) for s in found] == [
        ("face_match", "Ada", 2, 99.0), ("face_unknown", None, 2, 99.5)]
    # Without a collection, "no match" means nothing: no face_unknown sighting.
    assert [s.kind for s in alerts.face_sightings(meta(), records, "b", "k", searched=False)] == ["face_match"]


def test_sighting_time_is_capture_time_else_now() -> None:
    (s,) = alerts.person_sightings(meta(), 1, 0.8, "b", "k")
    assert s.at == T0 and s.confidence == 80.0
    later = T0 + timedelta(days=1)
    (s,) = alerts.person_sightings(meta(at=None), 1, 0.8, "b", "k", now=later)
    assert s.at == later
    assert alerts.person_sightings(meta(), 0, None, "b", "k") == []


# --- the whole decision with a store, racing ---------------------------------------------------


def make_alerter(rules: list[dict], store: MemoryStore, sent: list[Alert]) -> Alerter:
    settings = AlertSettings(rules=alerts.parse_rules(rules), timezone=ZoneInfo("UTC"), link_expiry_s=60,
                             topic_arn="arn:aws:sns:us-east-1:123456789012:t", table=None)

    def publish(alert: Alert) -> str:
        sent.append(alert)
        return str(len(sent))

    return Alerter(settings, store, publish, lambda b, k, e: f"https://example.test/{b}/{k}?expires={e}",
                   clock=lambda: T0)


def test_cooldown_is_per_camera_and_per_kind() -> None:
    sent: list[Alert] = []
    alerter = make_alerter([{"name": "p", "when": "person"}, {"name": "u", "when": "face_unknown"}],
                           MemoryStore(), sent)
    alerter.process([sighting("person", "door", 0), sighting("person", "yard", 1), sighting("person", "door", 2),
                     sighting("face_unknown", "door", 3), sighting("face_unknown", "door", 4)])
    assert [(a.doc["camera_id"], a.doc["kind"]) for a in sent] == [
        ("door", "person"), ("yard", "person"), ("door", "face_unknown")]


def test_face_match_cooldown_is_per_person() -> None:
    sent: list[Alert] = []
    alerter = make_alerter([{"name": "m", "when": "face_match"}], MemoryStore(), sent)
    alerter.process([sighting("face_match", "door", 0, name="Ada"), sighting("face_match", "door", 1, name="Bob"),
                     sighting("face_match", "door", 2, name="Ada")])
    assert [a.doc["matched_name"] for a in sent] == ["Ada", "Bob"]


def test_concurrent_invocations_fire_once() -> None:
    """Eight threads see the 3rd..10th frame at once: exactly one alert (conditional writes)."""
    store = MemoryStore()
    sent: list[Alert] = []
    lock = threading.Lock()
    rules = [{"name": "p", "when": "person", "detections": 3, "window_s": 30, "cooldown_s": 300}]
    alerter = make_alerter(rules, store, sent)
    alerter.process([sighting(seconds=0), sighting(seconds=1)])
    barrier = threading.Barrier(8)

    def one(i: int) -> None:
        barrier.wait()
        mine = make_alerter(rules, store, [])
        out = mine.process([sighting(seconds=2 + i)])
        with lock:
            sent.extend(out)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent) == 1
