"""Offline evaluation of the packaged CloudFormation template, for tests/test_stack.py.

The template is full of intrinsics (Ref, GetAtt, Sub, Join, Split, If). To compare it with
the names contract.py derives, these helpers evaluate them the way CloudFormation would in
a given account and region, with the stack parameters (KMS, Parquet) set either way. Only
what the template uses is supported; anything else raises, so a new construct cannot be
silently misread as a match.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
STAGE = "dev"
PARTITION = "aws"


class NoValue:
    """AWS::NoValue: the property or list item disappears."""


NO_VALUE = NoValue()


@dataclass
class Template:
    """A packaged template plus the parameter values to evaluate it with."""

    doc: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, **parameters: str) -> Template:
        return cls(json.loads(path.read_text()), dict(parameters))

    def with_parameters(self, **parameters: str) -> Template:
        return Template(self.doc, {**self.parameters, **parameters})

    @property
    def resources(self) -> dict[str, Any]:
        return self.doc["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    # ---------------------------------------------------------------- evaluation

    def parameter(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        return str(self.doc["Parameters"][name]["Default"])

    def condition(self, name: str) -> bool:
        return self._condition_expr(self.doc["Conditions"][name], name)

    def _condition_expr(self, expr: Any, name: str) -> bool:
        (fn, args), = expr.items()
        if fn == "Fn::Equals":
            left, right = (self.eval(a) for a in args)
            return left == right
        if fn == "Condition":
            return self.condition(args)
        if fn == "Fn::Not":
            (inner,) = args
            return not self._condition_expr(inner, name)
        if fn == "Fn::And":
            return all(self._condition_expr(a, name) for a in args)
        if fn == "Fn::Or":
            return any(self._condition_expr(a, name) for a in args)
        raise NotImplementedError(f"condition {name}: {fn}")

    def resource_included(self, logical_id: str) -> bool:
        cond = self.resources[logical_id].get("Condition")
        return cond is None or self.condition(cond)

    def ref(self, name: str) -> Any:
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION,
                  "AWS::StackName": f"vidsift-{STAGE}", "AWS::URLSuffix": "amazonaws.com"}
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.doc.get("Parameters", {}):
            return self.parameter(name)
        res = self.resources[name]
        props = res.get("Properties", {})
        t = res["Type"]
        simple = {
            "AWS::S3::Bucket": "BucketName", "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
            "AWS::DynamoDB::Table": "TableName", "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::Logs::LogStream": "LogStreamName", "AWS::Athena::WorkGroup": "Name",
            "AWS::Lambda::Function": "FunctionName",
        }
        if t in simple:
            if simple[t] not in props:  # CloudFormation generates a name (e.g. the deployment bucket)
                return f"generated-{name.lower()}"
            return self.eval(props[simple[t]])
        if t == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.eval(props['QueueName'])}"
        if t == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{self.eval(props['TopicName'])}"
        if t == "AWS::Glue::Database":
            return self.eval(props["DatabaseInput"]["Name"])
        if t == "AWS::Glue::Table":
            return self.eval(props["TableInput"]["Name"])
        if t in ("AWS::KMS::Key", "AWS::IAM::Role", "AWS::Lambda::LayerVersion"):
            return f"<{name}>"
        raise NotImplementedError(f"Ref to {t}")

    def get_att(self, name: str, attr: str) -> str:
        res = self.resources[name]
        t = res["Type"]
        if t == "AWS::SQS::Queue" and attr == "QueueName":
            return self.eval(res["Properties"]["QueueName"])
        if attr != "Arn":
            raise NotImplementedError(f"GetAtt {name}.{attr}")
        n = self.ref(name)
        if t == "AWS::S3::Bucket":
            return f"arn:{PARTITION}:s3:::{n}"
        if t == "AWS::SQS::Queue":
            return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{n.rsplit('/', 1)[1]}"
        if t == "AWS::KinesisFirehose::DeliveryStream":
            return f"arn:{PARTITION}:firehose:{REGION}:{ACCOUNT}:deliverystream/{n}"
        if t == "AWS::DynamoDB::Table":
            return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{n}"
        if t == "AWS::Logs::LogGroup":
            return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{n}:*"
        if t == "AWS::KMS::Key":
            return f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{name}"
        if t == "AWS::IAM::Role":
            return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"
        if t == "AWS::Lambda::Function":
            return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{n}"
        raise NotImplementedError(f"GetAtt {t}.Arn")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def repl(m: re.Match[str]) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(self.eval(variables[inner]))
            if "." in inner and not inner.startswith("AWS::"):
                res, attr = inner.split(".", 1)
                return self.get_att(res, attr)
            return str(self.ref(inner))

        return re.sub(r"\$\{([^}]+)\}", repl, text)

    def eval(self, node: Any) -> Any:
        """The value CloudFormation would see; NO_VALUE items are dropped."""
        if isinstance(node, list):
            items = [self.eval(x) for x in node]
            return [x for x in items if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                res, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(res, attr)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return self._sub(text, variables)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.eval(parts))
            if key == "Fn::Split":
                sep, text = arg
                return self.eval(text).split(sep)
            if key == "Fn::Select":
                index, items = arg
                return self.eval(items)[int(self.eval(index))]
            if key == "Fn::If":
                cond, yes, no = arg
                return self.eval(yes if self.condition(cond) else no)
            if key.startswith("Fn::"):
                raise NotImplementedError(key)
        out = {k: self.eval(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.eval(self.resources[logical_id].get("Properties", {}))


# -------------------------------------------------------------------- IAM helpers


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(policy_statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Every (action, resource) pair an Allow statement grants."""
    pairs: set[tuple[str, str]] = set()
    for st in policy_statements:
        if st["Effect"] != "Allow":
            continue
        for action in as_list(st["Action"]):
            for resource in as_list(st["Resource"]):
                pairs.add((action, resource))
    return pairs


def role_statements(tpl: Template, role_id: str) -> list[dict[str, Any]]:
    props = tpl.props(role_id)
    statements: list[dict[str, Any]] = []
    for policy in props.get("Policies", []):
        statements.extend(policy["PolicyDocument"]["Statement"])
    return statements


# -------------------------------------------------------------------- packaging, once per run

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_FILE = "cloudformation-template-update-stack.json"


def macos_like_tools(folder: Path) -> Path:
    """A folder to put first on PATH so the packaging scripts meet a Mac's tools: no flock(1),
    and a BSD date, which prints %N as a literal N instead of nanoseconds."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flock").write_text("#!/bin/sh\necho 'flock: command not found (macOS has none)' >&2\nexit 127\n")
    real_date = subprocess.run(["bash", "-c", "command -v date"], capture_output=True, text=True,
                               check=True).stdout.strip()
    (folder / "date").write_text(f"""#!/bin/sh
case "$*" in *%N*) echo 'date: %N is not supported by BSD date' >&2; exit 1;; esac
exec {real_date} "$@"
""")
    for tool in ("flock", "date"):
        (folder / tool).chmod(0o755)
    return folder


# osls stages every function zip in the checkout's own .serverless/ before moving it to
# --package, and its first step (package:cleanup) deletes that folder: two `sls package`
# runs in one checkout delete each other's zips, whatever --package says (seen in CI: a
# packaging's zips vanished while another module packaged). Every `sls` the tests run holds
# this one lock, which every xdist worker and every pytest session in the checkout shares.
SLS_LOCK = ROOT / ".serverless.lock"


@contextlib.contextmanager
def sls_lock() -> Iterator[None]:
    """Hold the checkout's `sls` lock (see SLS_LOCK) for one `sls package` run."""
    with open(SLS_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def package_stack(shared: Path, *params: str) -> tuple[Path, str]:
    """``scripts/package-offline.sh [params]`` (osls + cfn-lint) once per test run and set of
    params, shared by every module and xdist worker that asks (``shared``: a folder they all
    see), one `sls` at a time in the checkout (SLS_LOCK): each packaging takes tens of seconds
    of CPU. Runs with a Mac's flock-less, BSD-date tools first on PATH: a Mac is a common
    deploy machine. Returns the output folder and the script's log; a failed packaging fails
    every caller with its log."""
    name = "sls-package-" + ("-".join(p.removeprefix("--param=").replace("=", "_") for p in params) or "default")
    out, failed = shared / name, shared / f"{name}.failed"
    shared.mkdir(parents=True, exist_ok=True)
    with sls_lock():
        if not (out / ".log").exists() and not failed.exists():
            tools = macos_like_tools(shared / "macos-tools")
            env = {**os.environ, "SLS_PACKAGE_DIR": str(out), "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
            proc = subprocess.run(["bash", "scripts/package-offline.sh", *params], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=900, check=False)
            log = proc.stdout + proc.stderr
            if proc.returncode != 0:
                failed.write_text(f"scripts/package-offline.sh {' '.join(params)} exited {proc.returncode}:\n{log}")
            else:
                (out / ".log").write_text(log)
    if failed.exists():
        raise RuntimeError(failed.read_text()[-6000:])
    return out, (out / ".log").read_text()


def shared_folder(tmp_path_factory: Any) -> Path:
    """A folder every xdist worker of this run sees (the parent of the workers' own temp
    folders), or this run's temp folder without xdist."""
    base = Path(tmp_path_factory.getbasetemp())
    return base.parent / "shared" if os.environ.get("PYTEST_XDIST_WORKER") else base / "shared"
