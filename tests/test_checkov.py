"""checkov finds nothing in the packaged stack, and every finding skipped says why.

The stack is packaged offline (scripts/package-offline.sh: osls + cfn-lint) once with the
default params and once with kms=true, and checkov 3.3.30 (requirements-checkov.txt, its
own venv .venv-checkov/ that `make test` builds) scans each compiled template. Findings
that do not apply are skipped in serverless.yml itself, with checkov's syntax (a resource's
Metadata.checkov.skip: [{id, comment}]); a skip without a reason fails here.

checkov does not evaluate CloudFormation Conditions: a property set through
!If [UseKms, <key>, !Ref AWS::NoValue] passes its check in both variants. With kms=false
the queues use SQS managed SSE and the log groups CloudWatch Logs' own encryption.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_stack import package_stack, shared_folder

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
TEMPLATE = "cloudformation-template-update-stack.json"
VARIANTS = {"default": [], "kms": ['--param=kms=true'], "visitors": []}
#: Variants scanned as the default packaging with these parameter defaults changed (no second
#: `sls package`): the opt-in visitors' resources exist only with VisitorsEnabled=true.
DEFAULTS = {"visitors": {"VisitorsEnabled": "true"}}


def _package(tmp_path_factory: pytest.TempPathFactory, args: list[str]) -> tuple[Path, dict[str, Any]]:
    """The run's shared packaging of this variant (conftest_stack.package_stack)."""
    try:
        out, _ = package_stack(shared_folder(tmp_path_factory), *args)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    return out, json.loads((out / TEMPLATE).read_text())


def _checkov(template: Path, home: Path) -> dict[str, Any]:
    # --skip-download: no call to Prisma Cloud for guidelines (offline, and quicker).
    proc = subprocess.run([str(CHECKOV), "-f", str(template), "--framework", "cloudformation", "-o", "json",
                           "--quiet", "--skip-download"], env={**os.environ, "HOME": str(home)},
                          capture_output=True, text=True, timeout=600, check=False)
    # Exit status 1 means failed checks; the JSON says which. Anything else is checkov failing.
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        pytest.fail(f"checkov exited {proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout)
    if isinstance(report, list):  # one report per framework; only cloudformation asked for
        (report,) = report
    return report


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def scanned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(compiled template, checkov's JSON report) for one variant of the stack."""
    if not CHECKOV.exists():
        pytest.skip(f"{CHECKOV.relative_to(ROOT)} missing: `make test` installs checkov "
                    "(requirements-checkov.txt) into its own venv first")
    out, doc = _package(tmp_path_factory, VARIANTS[request.param])
    template = out / TEMPLATE
    if request.param in DEFAULTS:
        for name, value in DEFAULTS[request.param].items():
            doc["Parameters"][name]["Default"] = value
        template = tmp_path_factory.mktemp(f"checkov-{request.param}") / TEMPLATE
        template.write_text(json.dumps(doc))
    report = _checkov(template, tmp_path_factory.mktemp("checkov-home"))
    return doc, report


def _condition(doc: dict[str, Any], value: Any) -> bool:
    """A template condition under the parameters' defaults (Fn::Equals, Fn::Not, Condition)."""
    if isinstance(value, dict) and "Condition" in value:
        return _condition(doc, doc["Conditions"][value["Condition"]])
    if isinstance(value, dict) and "Fn::Not" in value:
        return not _condition(doc, value["Fn::Not"][0])
    if isinstance(value, dict) and "Fn::Equals" in value:
        a, b = (str(doc["Parameters"][v["Ref"]]["Default"]) if isinstance(v, dict) else str(v)
                for v in value["Fn::Equals"])
        return a == b
    raise NotImplementedError(value)


def test_checkov_finds_nothing(scanned: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, report = scanned
    summary = report.get("summary", {})
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert summary.get("parsing_errors") == 0, summary
    assert summary.get("passed", 0) > 0, summary  # it did scan the template
    assert failed == [], "\n".join(failed)
    assert summary.get("failed") == 0, summary


def skip_problems(doc: dict[str, Any]) -> tuple[list[str], int]:
    """(problems, number of skips) of the Metadata.checkov.skip lists in a compiled template."""
    problems = []
    skips = 0
    for logical_id, resource in doc["Resources"].items():
        checkov_meta = (resource.get("Metadata") or {}).get("checkov")
        if checkov_meta is None:
            continue
        # A resource whose condition is false is not in the stack, and checkov does not scan it.
        counted = "Condition" not in resource or _condition(doc, {"Condition": resource["Condition"]})
        entries = checkov_meta.get("skip") if isinstance(checkov_meta, dict) else None
        if not isinstance(entries, list) or not entries:
            problems.append(f"{logical_id}: Metadata.checkov has no skip list: {checkov_meta!r}")
            continue
        for entry in entries:
            skips += counted
            cid = entry.get("id") if isinstance(entry, dict) else None
            comment = entry.get("comment") if isinstance(entry, dict) else None
            if not (isinstance(cid, str) and cid.startswith("CKV")):
                problems.append(f"{logical_id}: skip without a check id: {entry!r}")
            if not (isinstance(comment, str) and comment.strip()):
                problems.append(f"{logical_id}: skip of {cid} gives no reason")
    return problems, skips


def test_every_skip_says_why(scanned: tuple[dict[str, Any], dict[str, Any]]) -> None:
    doc, report = scanned
    problems, skips = skip_problems(doc)
    assert problems == [], "\n".join(problems)
    assert skips > 0
    # checkov honoured them: as many skipped checks as skips in the template (with --quiet
    # the report lists failed checks only; the summary counts the rest).
    assert report["summary"]["skipped"] == skips, (report["summary"], skips)


def test_skip_without_reason_is_caught() -> None:
    def doc(*entries: Any) -> dict[str, Any]:
        return {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Metadata": {"checkov": {"skip": list(entries)}}}}}

    assert skip_problems(doc({"id": "CKV_AWS_27", "comment": "why"})) == ([], 1)
    for bad in ({"id": "CKV_AWS_27"}, {"id": "CKV_AWS_27", "comment": " "}, {"comment": "why"}, "CKV_AWS_27"):
        assert skip_problems(doc(bad))[0], bad
    assert skip_problems(doc())[0]  # an empty skip list
