"""Configuration layers, refused secrets, the device id and the device IAM policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.config import ConfigError, load_config, parse_size
from edge.device import resolve_device_id
from edge.policy import device_policy
from vidsift.contract import ResourceNames


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_defaults_toml_env_flags(tmp_path):
    toml = write(tmp_path / "c.toml", 'bucket = "from-file"\ncamera_id = "file-cam"\n[upload]\n'
                 'disk_cap_bytes = "1GiB"\n[record]\nthreshold = 0.6\nhours = "07:00-19:00"\n')
    env = {"VIDSIFT_EDGE_CAMERA_ID": "env-cam", "VIDSIFT_EDGE_SETTLE_S": "2.5", "VIDSIFT_EDGE_SNAPSHOTS": "no"}
    cfg = load_config(toml, env=env, overrides={"camera_id": None, "threshold": "0.7"})
    assert cfg.raw_bucket() == "from-file"
    assert cfg.camera_id == "env-cam"  # env beats the file
    assert cfg.threshold == 0.7  # a flag beats both
    assert cfg.disk_cap_bytes == 1024**3 and cfg.settle_s == 2.5 and cfg.snapshots is False
    assert cfg.hours == "07:00-19:00" and cfg.post_roll_s == 5.0  # defaults stay


@pytest.mark.parametrize("line", [
    'aws_access_key_id = "AKIA..."', 'aws_secret_access_key = "x"', 'aws_session_token = "x"',
    'endpoint_url = "http://evil"', '[aws]\nsecret = "x"',
])
def test_credentials_and_endpoints_in_a_config_file_are_refused(tmp_path, line):
    with pytest.raises(ConfigError, match="does not belong in a config file"):
        load_config(write(tmp_path / "c.toml", line + "\n"), env={})


def test_unknown_and_invalid_settings_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'buckt'"):
        load_config(write(tmp_path / "a.toml", 'buckt = "x"\n'), env={})
    with pytest.raises(ConfigError, match="sse"):
        load_config(None, env={"VIDSIFT_EDGE_SSE": "DES"})
    with pytest.raises(ConfigError, match="part_size_bytes"):
        load_config(None, env={}, overrides={"part_size_bytes": "1MiB"})
    with pytest.raises(ConfigError, match="hours"):
        load_config(None, env={}, overrides={"hours": "7-19"})


def test_bucket_is_derived_from_the_contract():
    cfg = load_config(None, env={"VIDSIFT_EDGE_STAGE": "prod", "VIDSIFT_EDGE_ACCOUNT": "111122223333"})
    assert cfg.raw_bucket() == ResourceNames("prod", "111122223333").bucket("raw")
    with pytest.raises(ConfigError, match="no bucket"):
        load_config(None, env={}).raw_bucket()


def test_sizes():
    assert parse_size("5MiB") == 5 * 1024**2
    assert parse_size("500MB") == 500_000_000
    assert parse_size("2g") == 2_000_000_000
    assert parse_size("1048576") == 1048576
    with pytest.raises(ConfigError):
        parse_size("lots")


def test_device_id_prefers_configured_then_pi_serial_then_hostname(tmp_path):
    cpuinfo = write(tmp_path / "cpuinfo", "processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000abcdef12\n")
    dt = tmp_path / "serial-number"
    dt.write_bytes(b"00000000deadbeef\x00")
    missing = tmp_path / "none"
    assert resolve_device_id("door-pi", cpuinfo, dt) == "door-pi"
    assert resolve_device_id("auto", cpuinfo, dt) == "10000000abcdef12"
    assert resolve_device_id("auto", missing, dt) == "00000000deadbeef"
    import socket

    assert resolve_device_id("auto", missing, missing) == socket.gethostname()


def test_device_policy_is_least_privilege(capsys):
    bucket = ResourceNames("prod", "111122223333").bucket("raw")
    assert main(["policy", "--bucket", bucket]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == device_policy(bucket)
    (statement,) = printed["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObject"]
    assert statement["Resource"] == f"arn:aws:s3:::{bucket}/uploads/*"
    with_kms = device_policy(bucket, "arn:aws:kms:eu-west-1:111122223333:key/abc")
    assert with_kms["Statement"][1]["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]


def test_the_shipped_example_config_loads():
    example = Path(__file__).resolve().parents[1] / "edge" / "config.example.toml"
    cfg = load_config(example, env={})
    assert cfg.raw_bucket() == "vidsift-prod-111122223333-raw"
    assert cfg.source and cfg.source.startswith("rtsp://") and cfg.hours == "06:00-22:00"
    assert cfg.disk_cap_bytes == 4 * 1024**3


def test_the_systemd_unit_is_hardened_and_keeps_state():
    unit = (Path(__file__).resolve().parents[1] / "edge" / "systemd" / "vidsift-edge.service").read_text()
    settings = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in unit.splitlines()
                if "=" in line and not line.startswith("#")}
    assert settings["ExecStart"].endswith("vidsift-edge run --config /etc/vidsift-edge/config.toml")
    for key, value in {"DynamicUser": "yes", "ProtectSystem": "strict", "StateDirectory": "vidsift-edge",
                       "Restart": "always", "NoNewPrivileges": "yes", "ProtectHome": "yes"}.items():
        assert settings[key] == value, key
    assert "AWS_SECRET" not in unit and "aws_secret" not in unit


def test_metadata_is_ascii_and_keeps_the_pipeline_key_names():
    from datetime import UTC, datetime
    from urllib.parse import unquote

    from vidsift.core.uploads import EdgeStats, VideoInfo, build_metadata

    md = build_metadata(camera_id="Küche", device_id="pi-1", recorded_at=datetime(2025, 1, 2, 3, 4, 5, 6000, UTC),
                        info=VideoInfo(12.3456, 640, 480, None), stats=EdgeStats(2, 0.91234, "ssdlite", 0.5),
                        sample_fps=0.5)
    assert md == {"camera-id": "K%C3%BCche", "device-id": "pi-1", "recorded-at": "2025-01-02T03:04:05.006Z",
                  "fps": "0.5", "duration-s": "12.346", "frame-width": "640", "frame-height": "480",
                  "edge-max-people": "2", "edge-max-confidence": "0.9123", "edge-detector": "ssdlite",
                  "edge-threshold": "0.5"}
    assert unquote(md["camera-id"]) == "Küche"
