"""Every deploy parameter is checked before anything is compiled (issue 26, item 9).

A typo in alertTimezone, alertLinkExpirySeconds or sampleFps used to pass `sls deploy` and
then fail every frame with people; a region without Rekognition or serverless SageMaker
endpoints deployed a stack whose every call failed. Now vidsift/deploy/checks.py checks each
parameter serverless.yml declares (the plugin hands over serverless.yml's custom.deployChecks)
and the region against vidsift/deploy/regions.json."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest_stack import sls_lock

from vidsift.deploy import checks as deploy_checks

ROOT = Path(__file__).resolve().parents[1]
SERVERLESS = (ROOT / "serverless.yml").read_text()


def sls_package(tmp_path: Path, region: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline",
           "AWS_REGION": region, "AWS_EC2_METADATA_DISABLED": "true", "VIDSIFT_OFFLINE_PACKAGE": "1"}
    with sls_lock():  # sls's first step deletes the checkout's .serverless/: see conftest_stack.SLS_LOCK
        return subprocess.run([str(ROOT / "node_modules" / ".bin" / "sls"), "package", "--stage", "dev",
                               "--region", region, "--package", str(tmp_path / "pkg"), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)


def declared_params() -> dict[str, str]:
    """serverless.yml's params.default: name -> default as written."""
    block = SERVERLESS.split("params:\n  default:\n", 1)[1].split("\nprovider:", 1)[0]
    return {m.group(1): m.group(2).strip().strip("'") for m in re.finditer(r"^    ([A-Za-z]+): (.*)$", block, re.M)}


def handed_over() -> dict[str, str]:
    """serverless.yml's custom.deployChecks: what the plugin gives deploy_checks."""
    block = SERVERLESS.split("  deployChecks:\n", 1)[1]
    return dict(re.findall(r"^    ([A-Za-z]+): (\S+)$", block.split("\n  faceCollection:", 1)[0], re.M))


def test_every_parameter_is_handed_over_and_has_a_check() -> None:
    params = declared_params()
    assert len(params) >= 28
    assert handed_over() == {name: f"${{param:{name}}}" for name in params}
    assert set(deploy_checks.PARAM_CHECKS) == set(params)


def test_the_defaults_pass() -> None:
    defaults = {k: v for k, v in declared_params().items() if "${" not in v}
    defaults["endpointName"] = "vidsift-dev-person-detector"
    assert deploy_checks.param_problems(defaults) == []


@pytest.mark.parametrize(("name", "value", "why"), [
    ("alertTimezone", "Europe/Pariss", "IANA time zone"), ("alertTimezone", "UTC+2", "IANA time zone"),
    ("alertLinkExpirySeconds", "1h", "whole number"), ("alertLinkExpirySeconds", "604801", "7 days"),
    ("sampleFps", "0", "above 0"), ("sampleFps", "one", "a number"), ("sampleMode", "keyframe", "fps, keyframes"),
    ("jpegQuality", "9O", "whole number"), ("personMinConfidence", "50", "0-1"),
    ("faceMinConfidence", "0.8x", "number"),
    ("dedup", "maybe", "on, off"), ("segmentSeconds", "5", "from 10"), ("faceFramesMax", "0", "from 1"),
    ("trackMaxGapSeconds", "0", "above 0"), ("frameExpiryDays", "7.5", "whole number"), ("kms", "yes", "true, false"),
    ("parquet", "True", "true, false"), ("firehoseBufferSeconds", "30", "from 60"), ("endpointName", "My_Endpoint",
                                                                                   "SageMaker endpoint"),
    ("logLevel", "WARNING", "INFO, DEBUG, ERROR"), ("logRetentionDays", "10", "one of"),
    ("opsEmail", "ops.example.com", "e-mail"), ("rekognitionTps", "0", "above 0"),
    ("faceMatchThreshold", "101", "to 100"),
    ("rawNoncurrentDays", "0", "from 1"), ("maxFrameSide", "32", "from 64"), ("faceMinSize", "-0.1", "from 0"),
    ("faceMinPersonHeight", "2", "to 1"), ("faceRevisitSeconds", "-1", "from 0"), ("personMinArea", "nan", "to 1"),
])
def test_a_bad_value_is_named(name: str, value: str, why: str) -> None:
    (problem,) = deploy_checks.param_problems({name: value})
    assert problem.startswith(f"{name}={value!r}") and why in problem, problem


def test_an_unknown_parameter_is_a_bug_here() -> None:
    (problem,) = deploy_checks.param_problems({"sampleFPS": "1"})
    assert "no deploy check knows" in problem


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_regions_with_everything_pass(region: str) -> None:
    assert deploy_checks.region_problems(region) == []


@pytest.mark.parametrize(("region", "lacks"), [("af-south-1", "Rekognition"), ("eu-south-2", "Rekognition"),
                                              ("us-east-l", "SageMaker serverless")])
def test_a_region_without_a_needed_service_is_refused(region: str, lacks: str) -> None:
    (problem,) = deploy_checks.region_problems(region)
    assert repr(region) in problem and lacks in problem and "docs.aws.amazon.com" in problem


@pytest.mark.parametrize(("region", "args", "why"), [
    ("us-east-1", ["--param=alertTimezone=Europe/Pariss"], "alertTimezone='Europe/Pariss': not an IANA time zone"),
    ("eu-west-1", ["--param=sampleFps=1,5"], "sampleFps='1,5': expected a number"),
    ("af-south-1", [], "region 'af-south-1' lacks"),
], ids=["timezone", "fps", "region"])
def test_sls_package_refuses_a_bad_parameter_or_region(tmp_path: Path, region: str, args: list[str],
                                                       why: str) -> None:
    proc = sls_package(tmp_path, region, *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "deploy-checks: refusing to package this stack" in out and why in out, out[-3000:]
    assert not (tmp_path / "pkg" / "cloudformation-template-update-stack.json").exists()
