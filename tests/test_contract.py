"""One name for one thing: the Python side of the contract agrees with itself.
(tests/test_stack.py checks the compiled CloudFormation template against the same file.)"""

from vidsift import contract
from vidsift.local.stack import LocalStack
from vidsift.settings import Settings


def test_function_env_keys_are_declared() -> None:
    declared = set(contract.load()["env"])
    env = LocalStack().function_env()
    names = contract.local_names().function_env()
    assert set(names) <= declared
    assert {k for k in env if k.isupper() and not k.startswith(("AWS_", "POWERTOOLS_"))} <= declared


def test_settings_read_every_declared_variable(monkeypatch) -> None:
    for key in contract.load()["env"]:
        monkeypatch.setenv(key, "1" if key not in ("SAMPLE_MODE",) else "keyframes")
    s = Settings.from_env()
    assert s.sample_mode == "keyframes" and s.sample_fps == 1.0
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source = "".join(p.read_text() for d in ("vidsift", "functions") for p in (root / d).rglob("*.py"))
    for key in contract.load()["env"]:
        assert f'"{key}"' in source, f"{key} is declared in contract.json but no code reads it"


def test_handlers_named_by_the_contract_exist() -> None:
    from vidsift.local.dispatcher import load_handler

    for stage in contract.STAGES:
        assert callable(load_handler(stage))


def test_every_function_is_one_name_in_the_contract() -> None:
    """contract.FUNCTIONS is every function a stack always has (the role, stack and package
    tests iterate it): the sweeper is among them under the contract's own name, and each
    names a handler file that exists."""
    import importlib

    assert contract.load()["sweeper"]["name"] == contract.SWEEPER
    assert len(set(contract.FUNCTIONS)) == len(contract.FUNCTIONS)
    for name in contract.FUNCTIONS:
        module, attr = contract.function(name)["handler"].rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module.replace("/", ".")), attr)), name


def test_names_are_valid_aws_names() -> None:
    import re

    names = contract.ResourceNames(stage="prod", account="123456789012")
    for role in contract.load()["buckets"]:
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", names.bucket(role))
    for stage in contract.STAGES:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", names.dlq(stage))
    assert len(names.endpoint) <= 63


# -------------------------------------------------------------------- the alert fast lane


def test_snapshot_lane_is_a_notification_that_overlaps_nothing() -> None:
    """The raw bucket sends the edge's snapshots to detect_people besides the videos to
    split_frames; S3 refuses overlapping filters for one event type, and these pass only
    because no video suffix ends with the frame suffix (nor the other way round)."""
    notes = contract.notifications()
    assert contract.Notification("raw", "detect_people", "uploads/snapshots/", ".jpg") in notes
    raw = [n for n in notes if n.bucket == "raw"]
    assert {n.stage for n in raw} == {"split_frames", "detect_people"}
    assert contract.notification_overlaps(notes) == []
    doc = contract.load()
    assert not any(v.endswith(doc["frame_suffix"]) or doc["frame_suffix"].endswith(v) for v in doc["video_suffixes"])
    # The device policy allows writes under raw_upload_prefix only: snapshots must live inside it.
    assert doc["snapshot_prefix"].startswith(doc["raw_upload_prefix"])


def test_overlap_check_catches_what_s3_refuses() -> None:
    n = contract.Notification
    videos = [n("raw", "split_frames", "uploads/", ".mp4"), n("raw", "split_frames", "uploads/", ".mov")]
    assert contract.notification_overlaps([*videos, n("raw", "detect_people", "uploads/snapshots/", ".jpg")]) == []
    assert contract.notification_overlaps([*videos, n("raw", "detect_people", "uploads/snapshots/", "")])
    assert contract.notification_overlaps([*videos, n("raw", "detect_people", None, ".mp4")])
    assert contract.notification_overlaps([n("raw", "a", "uploads/", ".jpg"), n("raw", "b", "uploads/x/", "x.jpg")])
    assert contract.notification_overlaps([n("raw", "a", "uploads/", ".mp4"),
                                           n("raw", "b", "uploads/", ".mp4", "s3:ObjectCreated:Put")])
    assert contract.notification_overlaps([n("raw", "a", None, ".jpg"), n("frames", "b", None, ".jpg")]) == []


def test_batching_windows_leave_room_for_a_five_second_alert() -> None:
    """An alert crosses detect_people's and alert_faces' batching windows: 1 s each at most
    (alert_faces has none: a snapshot's face alert waits for nobody)."""
    assert contract.stage("detect_people")["batching_window_s"] == 1
    assert contract.stage("alert_faces")["batching_window_s"] == 0


def test_detect_people_outlives_an_endpoint_cold_start() -> None:
    """A cold serverless endpoint answers late: the client waits ENDPOINT_READ_TIMEOUT_S per
    attempt (plus 5 s to connect) for ENDPOINT_MAX_ATTEMPTS attempts, and detect_people must
    still be alive (with room for the retries' backoff) when the last answer comes."""
    from vidsift import aws

    worst = aws.ENDPOINT_MAX_ATTEMPTS * (aws.ENDPOINT_READ_TIMEOUT_S + 5)
    assert aws.ENDPOINT_READ_TIMEOUT_S >= 120  # above the cold start expected with vendored dependencies
    assert contract.stage("detect_people")["timeout_s"] >= worst + 30


def test_redrive_waits_for_at_least_five_receives() -> None:
    """Throttled receives count toward maxReceiveCount: AWS advises 5 or more for Lambda."""
    for stage in contract.STAGES:
        assert contract.stage(stage)["max_receive_count"] >= 5, stage


def test_edge_writes_the_metadata_keys_the_pipeline_reads() -> None:
    """One name for one thing: the edge's metadata keys are the contract's, and a snapshot as
    the edge builds it parses into the FrameMeta detect_people alerts with."""
    from datetime import UTC, datetime

    from vidsift.core import uploads as em
    from vidsift.core.snapshots import snapshot_meta

    edge_keys = {"camera_id": em.CAMERA_ID, "recorded_at": em.RECORDED_AT, "fps": em.FPS, "clip_key": em.CLIP_KEY}
    assert {k: contract.upload_key(k) for k in edge_keys} == edge_keys
    md = em.build_metadata(camera_id="Küche", device_id="pi-1", recorded_at=datetime(2026, 5, 1, 8, 0, 1, 250000, UTC),
                           stats=em.EdgeStats(1, 0.8, "ssdlite", 0.5), extra={em.CLIP_KEY: "uploads/abc.mp4"})
    meta = snapshot_meta("raw-bucket", "uploads/snapshots/x.jpg", "etag1", md)
    assert (meta.camera_id, meta.captured_at, meta.clip_key) == ("Küche", "2026-05-01T08:00:01.250Z", "uploads/abc.mp4")
    assert meta.alert_only and (meta.frame_index, meta.frame_time_s) == (0, 0.0)
    assert meta.source_key == "uploads/snapshots/x.jpg" and meta.source_bucket == "raw-bucket"


def test_local_stack_notifies_detect_people_of_snapshots() -> None:
    """The local stack's raw bucket carries the same snapshot notification as the template."""
    from vidsift import aws

    with LocalStack(with_models=False) as stack:
        configs = aws.client("s3").get_bucket_notification_configuration(
            Bucket=stack.names.bucket("raw"))["QueueConfigurations"]
        got = {(c["QueueArn"].rsplit(":", 1)[1],
                tuple(sorted((r["Name"].lower(), r["Value"]) for r in c["Filter"]["Key"]["FilterRules"])))
               for c in configs}
        assert (stack.names.queue("detect_people"), (("prefix", "uploads/snapshots/"), ("suffix", ".jpg"))) in got
        assert {q for q, _ in got} == {stack.names.queue("split_frames"), stack.names.queue("detect_people")}
        assert len(got) == len(contract.load()["video_suffixes"]) + 1
