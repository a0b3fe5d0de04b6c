"""A deploy that AWS would refuse half-way (a stage name S3 or SageMaker cannot take) or that
would break every frame at run time (alertRules that are no valid rules, an environment over
Lambda's 4 KB) is refused by `sls package` itself, before anything is compiled or uploaded."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest_stack import sls_lock

from vidsift.deploy import checks as deploy_checks

ROOT = Path(__file__).resolve().parents[1]


def many_rules(n: int) -> str:
    return json.dumps({"rules": [{"name": f"door-{i}", "when": "person", "camera": f"camera-{i}",
                                  "min_confidence": 70} for i in range(n)]}, separators=(",", ":"))


@pytest.mark.parametrize("stage", ["dev", "prod", "eu-west-1-prod", "a" * 21])
def test_stages_every_name_can_take(stage: str) -> None:
    assert deploy_checks.stage_problems(stage) == []


@pytest.mark.parametrize(("stage", "why"), [
    ("Prod", "lowercase"), ("dev_2", "lowercase"), ("-dev", "lowercase"), ("dev-", "lowercase"),
    ("a" * 33, "too long"),  # vidsift-<33>-123456789012-analytics: 64 characters, S3 takes 63
])
def test_stages_aws_would_refuse_mid_deploy(stage: str, why: str) -> None:
    (problem,) = deploy_checks.stage_problems(stage)
    assert why in problem and repr(stage) in problem


def test_the_longest_stage_fits_every_bucket_name() -> None:
    longest = max(n for n in range(1, 64) if not deploy_checks.stage_problems("a" * n))
    assert len(f"vidsift-{'a' * longest}-123456789012-analytics") == 63


@pytest.mark.parametrize(("value", "why"), [
    ("{not json", "ALERT_RULES"), ("alerts.json", "JSON text"),
    ('{"rules": [{"name": "x", "when": "person", "camera_id": "door"}]}', "camera_id"),
    ('{"rules": [{"name": "x", "when": "persn"}]}', "persn"), ('{"rulez": []}', "rulez"),
])
def test_alert_rules_that_would_fail_every_frame(value: str, why: str) -> None:
    (problem,) = deploy_checks.alert_rule_problems(value)
    assert problem.startswith("alertRules") and why in problem


def test_valid_alert_rules_pass() -> None:
    assert deploy_checks.alert_rule_problems("[]") == deploy_checks.alert_rule_problems(many_rules(3)) == []


def test_an_environment_over_lambdas_4_kb_is_refused() -> None:
    env = {"RAW_BUCKET": {"Ref": "RawBucket"}, "SAMPLE_FPS": "1"}
    assert deploy_checks.env_problems({"split_frames": {**env, "ALERT_RULES": many_rules(3)}}) == []
    (problem,) = deploy_checks.env_problems({"split_frames": {**env, "ALERT_RULES": many_rules(60)}})
    assert "split_frames" in problem and "4096" in problem and "ALERT_RULES" in problem


def sls_package(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline",
           "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "VIDSIFT_OFFLINE_PACKAGE": "1"}
    with sls_lock():  # sls's first step deletes the checkout's .serverless/: see conftest_stack.SLS_LOCK
        return subprocess.run([str(ROOT / "node_modules" / ".bin" / "sls"), "package", "--region", "us-east-1",
                               "--package", str(tmp_path / "pkg"), *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300, check=False)


@pytest.mark.parametrize(("args", "why"), [
    (["--stage", "Prod"], "stage 'Prod': use lowercase"),
    (["--stage", "dev", '--param=alertRules={"rules":[{"name":"x","when":"persn"}]}'], "when='persn'"),
    (["--stage", "dev", f"--param=alertRules={many_rules(60)}"], "over Lambda's 4096"),
    (["--stage", "dev", "--param=camerasFile=tests/data/bad-cameras.yaml"],
     "camera 'door', line 'entrance': the line has zero length"),
], ids=["stage", "rules", "env-size", "layout"])
def test_sls_package_refuses_before_compiling_anything(tmp_path: Path, args: list[str], why: str) -> None:
    proc = sls_package(tmp_path, *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "deploy-checks: refusing to package this stack" in out and why in out, out[-3000:]
    assert not (tmp_path / "pkg" / "cloudformation-template-update-stack.json").exists()


# -------------------------------------------------------------------- the camera layout (camerasFile)

LAYOUT = "cameras:\n  door:\n    lines:\n      - name: entrance\n        points: [[0.5, 0.1], [0.5, 0.9]]\n" \
         "        in_from: [0.1, 0.5]\n"


def test_a_bad_layout_is_refused_naming_camera_and_line(tmp_path: Path) -> None:
    (tmp_path / "cameras.yaml").write_text(LAYOUT.replace("[0.5, 0.9]", "[0.5, 0.1]"))
    doc = {"stage": "dev", "params": {"camerasFile": "cameras.yaml"}, "serviceDir": str(tmp_path)}
    (problem,) = deploy_checks.problems(doc)
    assert "camera 'door', line 'entrance': the line has zero length" in problem
    assert deploy_checks.read_layout("missing.yaml", str(tmp_path))[1][0].startswith("camerasFile missing.yaml: ")
    assert deploy_checks.problems({"stage": "dev", "params": {"camerasFile": ""}}) == []


def test_the_plugin_stores_the_checked_layout_after_a_deploy(tmp_path: Path) -> None:
    """plugins/deploy-checks.js under node, with the framework's provider played by a stub that
    records its S3 request: before packaging it runs the checks (this venv's python), after the
    deploy it puts the layout, as JSON, in the stage's analytics bucket under cameras_key."""
    import shutil
    import sys

    from vidsift import contract
    from vidsift.core import layout

    (tmp_path / "cameras.yaml").write_text(LAYOUT)
    script = f"""
const Plugin = require({json.dumps(str(ROOT / "plugins" / "deploy-checks.js"))});
const calls = [];
const sls = {{
  service: {{ service: 'vidsift', provider: {{ stage: 'dev', environment: {{}} }},
             custom: {{ camerasFile: 'cameras.yaml', deployChecks: {{ camerasFile: 'cameras.yaml' }} }},
             getAllFunctions: () => [], getFunction: () => ({{}}) }},
  serviceDir: {json.dumps(str(tmp_path))},
  classes: {{ Error }},
  cli: {{ log: () => {{}} }},
  getProvider: () => ({{ getAccountId: async () => '123456789012',
                         request: async (svc, op, params) => {{ calls.push([svc, op, params]); return {{}}; }} }}),
}};
const plugin = new Plugin(sls);
plugin.hooks['before:package:initialize']();
plugin.hooks['after:deploy:deploy']().then(() => console.log(JSON.stringify(calls)));
"""
    node = shutil.which("node")
    assert node, "node is needed for the Serverless CLI"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([node, "-e", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    ((svc, op, params),) = json.loads(proc.stdout)
    bucket = contract.ResourceNames("dev", "123456789012").bucket("analytics")
    assert (svc, op, params["Bucket"], params["Key"]) == ("S3", "putObject", bucket, contract.load()["cameras_key"])
    assert layout.parse(json.loads(params["Body"])) == layout.loads(LAYOUT)
