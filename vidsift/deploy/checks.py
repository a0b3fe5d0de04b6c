"""Refuse, at package time, a deploy that would fail half-way or break every frame later.

CloudFormation only finds a bad bucket name when it creates the bucket, deep into a first
deploy that then rolls back; a bad ``alertRules`` was found only at run time, when every
frame with people failed into the DLQ. ``plugins/deploy-checks.js`` hands this module the
resolved stage, region, parameters and each function's environment before ``sls package``
(and so ``sls deploy``) compiles anything, and stops it with these problems.

Plain Python with the standard library only: it runs with the deploy machine's python3.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vidsift import contract
from vidsift.core.errors import ConfigError

#: Lambda's limit on a function's environment: keys and values together.
LAMBDA_ENV_LIMIT_BYTES = 4096
#: A CloudFormation expression in the environment (a bucket ARN, a queue URL) is only known
#: after deploying; counted at this size, more than any name the stack gives it.
UNRESOLVED_VALUE_BYTES = 128
#: The longest an account id is: names are checked for every account.
WORST_ACCOUNT = "123456789012"
STAGE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
QUEUE_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")
ENDPOINT_RE = re.compile(r"[a-z0-9](?:-*[a-z0-9]){0,62}")
FUNCTION_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
STREAM_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def stage_problems(stage: str) -> list[str]:
    """Every name the stack derives from the stage must be one AWS accepts: bucket names are
    lowercase and at most 63 characters, and the endpoint's ARN is lowercase in IAM."""
    if not STAGE_RE.fullmatch(stage):
        return [f"stage {stage!r}: use lowercase letters, digits and hyphens only (it is part of S3 bucket "
                "names, which allow no uppercase or '_', and of the SageMaker endpoint's lowercase ARN)"]
    names = contract.ResourceNames(stage=stage, account=WORST_ACCOUNT)
    checks: list[tuple[str, str, re.Pattern[str]]] = [
        *((f"bucket {names.bucket(r)}", names.bucket(r), BUCKET_RE) for r in contract.load()["buckets"]),
        *((f"queue {names.dlq(s)}", names.dlq(s), QUEUE_RE) for s in contract.STAGES),
        *((f"function {names.prefix}-{s}", f"{names.prefix}-{s}", FUNCTION_RE) for s in contract.FUNCTIONS),
        *((f"stream {names.stream(t)}", names.stream(t), STREAM_RE) for t in contract.TABLES),
        (f"endpoint {names.endpoint}", names.endpoint, ENDPOINT_RE),
    ]
    too_long = [what for what, name, pattern in checks if not pattern.fullmatch(name)]
    if too_long:
        return [f"stage {stage!r} is too long: these names would break AWS's limits "
                f"(S3 buckets 63 characters, functions and streams 64, endpoints 63): {', '.join(too_long)}"]
    return []


def alert_rule_problems(value: str) -> list[str]:
    """``alertRules`` must be JSON text (a Lambda has no file to point at) of valid rules."""
    from vidsift.core.alerts import load_rules

    text = (value or "").strip()
    if not text:
        return []
    if text[0] not in "[{":
        return [f"alertRules must be JSON text (a list of rules or {{\"rules\": [...]}}), not {text[:40]!r}: "
                "a file path cannot be read inside Lambda; pass --param=\"alertRules=$(jq -c . alerts.json)\""]
    try:
        load_rules(text)
    except ConfigError as exc:
        return [f"alertRules: {exc}"]
    return []


def env_bytes(env: Mapping[str, Any]) -> int:
    """What Lambda counts against its 4 KB: every key and value, unresolved ones estimated."""
    total = 0
    for key, value in env.items():
        total += len(str(key).encode())
        total += len(value.encode()) if isinstance(value, str) else UNRESOLVED_VALUE_BYTES
    return total


def env_problems(envs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems = []
    for function, env in sorted(envs.items()):
        size = env_bytes(env)
        if size > LAMBDA_ENV_LIMIT_BYTES:
            biggest = max(env, key=lambda k: len(env[k]) if isinstance(env[k], str) else UNRESOLVED_VALUE_BYTES)
            problems.append(f"function {function}: its environment is about {size} bytes, over Lambda's "
                            f"{LAMBDA_ENV_LIMIT_BYTES} (largest: {biggest}); shorten alertRules (compact JSON, "
                            "fewer rules)")
    return problems


def read_layout(value: str, base: str | None = None) -> tuple[dict[str, Any] | None, list[str]]:
    """``camerasFile``: (the layout as the functions read it, problems). A YAML file needs PyYAML
    on the deploy machine; JSON needs nothing."""
    from pathlib import Path

    from vidsift.core.layout import LayoutError, loads

    if not value.strip():
        return None, []
    path = Path(value) if Path(value).is_absolute() or not base else Path(base) / value
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [f"camerasFile {value}: cannot be read ({exc.strerror or exc})"]
    try:
        return loads(text, f"camerasFile {value}").as_doc(), []
    except LayoutError as exc:
        return None, [str(exc)]
    except ImportError:
        return None, [f"camerasFile {value}: reading YAML needs PyYAML on this machine (pip install pyyaml), "
                      "or give the layout as JSON"]


# --- every other parameter ------------------------------------------------------------------
# Each deploy parameter of serverless.yml (params.default) has a check here, and the plugin
# hands all of them over (serverless.yml custom.deployChecks); tests/test_deploy_params.py
# proves both lists agree, so a new parameter cannot skip its check. The bounds are the
# run-time parsers' (vidsift.settings, vidsift.core.*), written again here because this module
# runs with the standard library only, on the deploy machine.

Check = Callable[[str], "str | None"]


def _number(lo: float, hi: float, *, whole: bool = False, lo_open: bool = False, unit: str = "") -> Check:
    def check(value: str) -> str | None:
        try:
            number = int(value) if whole else float(value)
        except ValueError:
            return f"expected {'a whole number' if whole else 'a number'}{unit}"
        if number != number or (number <= lo if lo_open else number < lo) or number > hi:
            low = f"above {lo:g}" if lo_open else f"from {lo:g}"
            return f"expected {low} to {hi:g}{unit}"
        return None
    return check


def _choice(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in allowed else f"expected one of {', '.join(allowed)}"
    return check


def _pattern(pattern: str, what: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: str) -> str | None:
        return None if compiled.fullmatch(value) else f"expected {what}"
    return check


def _timezone(value: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)"
    return None


def _dedup(value: str) -> str | None:
    raw = value.strip().lower()
    if raw in ("", "off", "false", "no", "none", "on", "true", "yes"):
        return None
    return _number(0, 64, whole=True, unit=" bits")(raw) and "expected on, off or a pHash distance of 0-64 bits"


#: CloudWatch Logs' allowed retentions (PutRetentionPolicy).
LOG_RETENTION_DAYS = ("1", "3", "5", "7", "14", "30", "60", "90", "120", "150", "180", "365", "400", "545", "731",
                      "1096", "1827", "2192", "2557", "2922", "3288", "3653")

PARAM_CHECKS: dict[str, Check] = {
    "sampleFps": _number(0, 60, lo_open=True, unit=" frames per second"),
    "sampleMode": _choice("fps", "keyframes"),
    "jpegQuality": _number(1, 100, whole=True),
    "maxFrameSide": _number(64, 8192, whole=True, unit=" pixels"),
    "personMinConfidence": _number(0, 1, unit=" (the detector's 0-1 score)"),
    "personTrackConfidence": _number(0, 1, unit=" (the detector's 0-1 score, at most personMinConfidence)"),
    "personMinArea": _number(0, 1, unit=" (a fraction of the frame)"),
    "faceMinConfidence": _number(0, 100, unit=" (Rekognition's percent)"),
    "faceMinSize": _number(0, 1, unit=" (a fraction of the frame's width)"),
    "dedup": _dedup,
    "segmentSeconds": _number(10, 86400, unit=" seconds"),
    "faceMatchThreshold": _number(0, 100, unit=" (Rekognition's similarity)"),
    "faceMinPersonHeight": _number(0, 1, unit=" (a fraction of the frame's height)"),
    "faceRevisitSeconds": _number(0, 86400, unit=" seconds"),
    "faceFramesMax": _number(1, 100, whole=True),
    "trackMaxGapSeconds": _number(0, 3600, lo_open=True, unit=" seconds"),
    "alertRules": lambda value: None,  # alert_rule_problems says more
    "alertTimezone": _timezone,
    "alertLinkExpirySeconds": _number(1, 7 * 24 * 3600, whole=True, unit=" seconds (SigV4's 7 days at most)"),
    "frameExpiryDays": _number(1, 3650, whole=True, unit=" days"),
    "rawNoncurrentDays": _number(1, 36500, whole=True, unit=" days"),
    "kms": _choice("true", "false"),
    "parquet": _choice("true", "false"),
    "firehoseBufferSeconds": _number(60, 900, whole=True, unit=" seconds"),
    "endpointName": _pattern(ENDPOINT_RE.pattern, "a SageMaker endpoint name: lowercase letters, digits and "
                                                  "hyphens, at most 63 characters"),
    "logLevel": _choice("INFO", "DEBUG", "ERROR"),
    "logRetentionDays": _choice(*LOG_RETENTION_DAYS),
    "opsEmail": _pattern(r"|[^@\s]+@[^@\s]+", "an e-mail address or nothing"),
    "rekognitionTps": _number(0, 10000, lo_open=True, unit=" calls per second"),
    "camerasFile": lambda value: None,  # read_layout says more
    "visitors": _choice("true", "false"),
    "visitorMatchThreshold": _number(0, 100, unit=" (Rekognition's similarity)"),
    "visitorFacesMax": _number(1, 100, whole=True),
    "visitorMinFacePx": _number(1, 4096, whole=True, unit=" pixels"),
    "visitorRetentionDays": _number(1, 36500, unit=" days"),
    "rawRetentionDays": _number(0, 36500, whole=True, unit=" days (0: kept)"),
    "stallAfterSeconds": _number(600, 30 * 86400, whole=True, unit=" seconds"),
}


def param_problems(params: Mapping[str, Any]) -> list[str]:
    """Every parameter checked, and none unknown: a parameter without a check is a bug here."""
    found = []
    for name, value in sorted(params.items()):
        check = PARAM_CHECKS.get(name)
        if check is None:
            found.append(f"{name}: no deploy check knows this parameter (add one to vidsift/deploy/checks.py)")
            continue
        why = check(str(value))
        if why:
            found.append(f"{name}={str(value)[:60]!r}: {why}")
    try:  # the functions refuse to start otherwise (vidsift.settings): say so before deploying
        low, high = float(params["personTrackConfidence"]), float(params["personMinConfidence"])
    except (KeyError, ValueError):
        return found
    if low > high:
        found.append(f"personTrackConfidence={low:g}: must be at most personMinConfidence ({high:g})")
    return found


# --- the region ---------------------------------------------------------------------------------

REGIONS_FILE = Path(__file__).with_name("regions.json")


def region_problems(region: str) -> list[str]:
    """The stack calls Rekognition and a SageMaker serverless endpoint in its own region."""
    services = json.loads(REGIONS_FILE.read_text())["services"]
    missing = [f"{spec['what']} (source: {spec['_source']})" for spec in services.values()
               if region not in spec["regions"]]
    if not missing:
        return []
    return [f"region {region!r} lacks what the stack needs: {'; '.join(missing)}. Deploy to a region that has "
            f"all of them (e.g. us-east-1, eu-west-1); vidsift/deploy/regions.json lists them"]


def problems(doc: Mapping[str, Any]) -> list[str]:
    """``doc``: {"stage", "region", "params": {...}, "environments": {function: {key: value}},
    "serviceDir"}."""
    params = doc.get("params", {})
    _, layout_problems = read_layout(str(params.get("camerasFile", "")), doc.get("serviceDir"))
    return [*stage_problems(str(doc["stage"])), *(region_problems(str(doc["region"])) if "region" in doc else []),
            *param_problems(params), *alert_rule_problems(str(params.get("alertRules", ""))),
            *env_problems(doc.get("environments", {})), *layout_problems]


def main() -> int:
    """Problems on stderr (exit 1); with a camerasFile and no problem, {"cameras": layout} on stdout."""
    doc = json.load(sys.stdin)
    found = problems(doc)
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        return 1
    layout, _ = read_layout(str(doc.get("params", {}).get("camerasFile", "")), doc.get("serviceDir"))
    if layout is not None:
        print(json.dumps({"cameras": layout}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
