"""The person detector's endpoint and the stack are in one region (issue 26, item 8).

sagemaker/deploy.py took the profile's default region while `sls deploy --region` put the
stack elsewhere: every InvokeEndpoint failed. Now deploy.py requires --region (and refuses a
region without serverless endpoints), and plugins/endpoint-check.js fails `sls deploy` (and
`sls check-endpoint`) when the endpoint is not InService in the stack's region. The plugin is
run by Node with the framework's provider replaced by one that answers as SageMaker does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "sagemaker" / "deploy.py")


def deploy_py(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    weights = tmp_path / "yolo11n.pt"
    weights.write_bytes(b"not really weights")
    return subprocess.run([sys.executable, SCRIPT, "--dry-run", "--no-vendor", "--weights", str(weights), "--out",
                           str(tmp_path / "m.tar.gz"), *args], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=120)


def test_deploy_py_requires_the_region(tmp_path: Path) -> None:
    proc = deploy_py(tmp_path, "--stage", "prod")
    assert proc.returncode == 2 and "--region is required" in proc.stderr


def test_deploy_py_refuses_a_region_without_serverless_endpoints(tmp_path: Path) -> None:
    proc = deploy_py(tmp_path, "--stage", "prod", "--region", "il-central-1")
    assert proc.returncode == 2 and "serverless endpoints are not offered" in proc.stderr
    assert deploy_py(tmp_path, "--stage", "prod", "--region", "il-central-1", "--instance-type",
                     "ml.c6i.xlarge").returncode == 0


def test_deploy_py_with_the_region(tmp_path: Path) -> None:
    proc = deploy_py(tmp_path, "--stage", "prod", "--region", "eu-west-1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["plan"]["endpoint_name"] == "vidsift-prod-person-detector"


NODE = """
const Plugin = require(process.argv[1]);
const answer = JSON.parse(process.argv[2]);
const calls = [];
class ServerlessError extends Error {}
const serverless = {
  classes: { Error: ServerlessError },
  cli: { log: (m) => console.log(m) },
  service: { provider: { environment: { ENDPOINT_NAME: 'vidsift-prod-person-detector' } } },
  getProvider: () => ({
    getRegion: () => 'eu-west-1',
    getStage: () => 'prod',
    request: async (service, method, params) => {
      calls.push([service, method, params]);
      if (answer.error) { const e = new Error(answer.error); e.code = 'ValidationException'; throw e; }
      return answer;
    },
  }),
};
const plugin = new Plugin(serverless);
plugin.hooks[process.argv[3]]().then(
  () => { console.log(JSON.stringify(calls)); process.exit(0); },
  (e) => { console.error(e.message); process.exit(e instanceof ServerlessError ? 3 : 4); });
"""


def run_plugin(answer: dict[str, str], hook: str = "after:deploy:deploy") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", "-e", NODE, str(ROOT / "plugins" / "endpoint-check.js"), json.dumps(answer), hook],
                          capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.parametrize("hook", ["after:deploy:deploy", "check-endpoint:check"])
def test_an_endpoint_in_service_in_the_stacks_region_passes(hook: str) -> None:
    proc = run_plugin({"EndpointStatus": "InService"}, hook)
    assert proc.returncode == 0, proc.stderr
    assert ["SageMaker", "describeEndpoint", {"EndpointName": "vidsift-prod-person-detector"}] in json.loads(
        proc.stdout.strip().splitlines()[-1])


def test_an_endpoint_missing_from_the_stacks_region_fails_the_deploy_clearly() -> None:
    proc = run_plugin({"error": 'Could not find endpoint "vidsift-prod-person-detector".'})
    assert proc.returncode == 3
    assert "no SageMaker endpoint vidsift-prod-person-detector in eu-west-1" in proc.stderr
    assert "python sagemaker/deploy.py --stage prod --region eu-west-1" in proc.stderr


def test_an_endpoint_not_in_service_fails_the_deploy() -> None:
    proc = run_plugin({"EndpointStatus": "Failed"})
    assert proc.returncode == 3 and "is Failed, not InService" in proc.stderr


def test_serverless_yml_runs_the_check() -> None:
    assert "- ./plugins/endpoint-check.js" in (ROOT / "serverless.yml").read_text()
