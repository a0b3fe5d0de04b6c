"""Visitors in the compiled stack: nothing exists or is granted unless visitors=true; with it,
analyze_faces' role allows exactly the visitor calls the pipeline makes (recorded on a
local run with visitors on, as tests/test_roles.py records its workload), and no more.
Also rawRetentionDays: a lifecycle rule on the raw footage only when set."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_stack import ACCOUNT, TEMPLATE_FILE, Template, package_stack, role_statements, shared_folder

from vidsift import contract
from vidsift.local.runner import run_videos
from vidsift.stages import visitors
from vidsift.testing import calls
from vidsift.testing.samples import Segment, make_video

NAMES = calls.Names(local_prefix=contract.local_names().prefix,
                    stage_prefix=contract.ResourceNames(stage="dev", account=ACCOUNT).prefix, account=ACCOUNT)
DEV = contract.ResourceNames(stage="dev", account=ACCOUNT)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return Template.load(package_stack(shared_folder(tmp_path_factory))[0] / TEMPLATE_FILE)


def _analyze_faces_role(tpl: Template) -> calls.Role:
    fid = next(k for k in tpl.of_type("AWS::Lambda::Function")
               if tpl.props(k)["FunctionName"] == f"{NAMES.stage_prefix}-analyze_faces")
    return calls.Role(role_statements(tpl, tpl.props(fid)["Role"].rsplit("/", 1)[1]))


def _visitor_grants(role: calls.Role) -> list[tuple[str, str]]:
    table = visitors.table_name(DEV)
    collection = visitors.collection_name(DEV)
    faces = contract.load()["visitors"]["faces_prefix"]
    return sorted((a, r) for a, r, _ in role.grants() if table in r or collection in r or faces in r)


def test_nothing_for_visitors_unless_opted_in(template: Template) -> None:
    off = template.with_parameters(VisitorsEnabled="false")
    assert not off.resource_included("VisitorsCollection") and not off.resource_included("VisitorsTable")
    assert _visitor_grants(_analyze_faces_role(off)) == []
    on = template.with_parameters(VisitorsEnabled="true")
    assert on.resource_included("VisitorsCollection") and on.resource_included("VisitorsTable")
    assert on.props("VisitorsCollection")["CollectionId"] == visitors.collection_name(DEV)
    assert "DeletionPolicy" not in on.resources["VisitorsCollection"]  # everyone's faces go with the stack


def test_raw_retention_is_a_rule_only_when_set(template: Template) -> None:
    def rules(tpl: Template) -> dict[str, dict]:
        bucket = next(k for k in tpl.of_type("AWS::S3::Bucket")
                      if tpl.props(k).get("BucketName") == DEV.bucket("raw"))
        return {r["Id"]: r for r in tpl.props(bucket)["LifecycleConfiguration"]["Rules"]}

    assert "expire-raw-footage" not in rules(template)
    assert rules(template.with_parameters(RawRetentionDays="90"))["expire-raw-footage"]["ExpirationInDays"] == "90"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[calls.Call]:
    """Two local runs with visitors on (a new visitor indexed and copied, then found again
    on another camera), every AWS call recorded per stage."""
    d = tmp_path_factory.mktemp("roles-visitors")
    first = make_video(d / "first.mp4", [Segment("astronaut", 2)], fps=5)
    again = make_video(d / "again.mp4", [Segment("coffee", 1), Segment("astronaut", 2)], fps=5, seed=3)
    recorder = calls.Recorder()
    with recorder.recording():
        for video, camera in ((first, "door"), (again, "lobby")):
            assert run_videos([video], d / "out", progress=False, visitors=True, camera_id=camera).ok
    return [c for c in recorder.calls if c.stage == "analyze_faces"]


def test_the_role_grants_exactly_the_visitor_calls_made(template: Template, recorded: list[calls.Call]) -> None:
    on = template.with_parameters(VisitorsEnabled="true")
    role = _analyze_faces_role(on)
    none: defaultdict[str, str | None] = defaultdict(lambda: None)  # kms=false: no customer managed key
    keys = calls.Keys(none, none, none)
    reqs: dict[calls.Request, list[calls.Call]] = {}
    for call in recorded:
        for req in calls.requests(call, NAMES, keys):
            reqs.setdefault(req, []).append(call)
    table, collection = visitors.table_name(DEV), visitors.collection_name(DEV)
    faces = contract.load()["visitors"]["faces_prefix"]
    mine = {r: c for r, c in reqs.items() if table in r.resource or collection in r.resource or faces in r.resource}
    assert {r.action for r in mine} == {"rekognition:DescribeCollection", "rekognition:SearchFacesByImage",
                                        "rekognition:IndexFaces", "dynamodb:GetItem", "dynamodb:PutItem",
                                        "s3:PutObject"}
    assert calls.denials(role, mine) == []
    unused, _ = calls.unused_grants(role, list(mine), "analyze_faces", {})
    assert [u for u in unused if table in u or collection in u or faces in u] == []


def test_visitor_names_table_reads_the_names_object(template: Template) -> None:
    t = template.props("VisitorNamesTable")["TableInput"]
    assert t["Name"] == "visitor_names"
    assert t["StorageDescriptor"]["Location"] == f"s3://{DEV.bucket('analytics')}/visitor_names/"
    assert [c["Name"] for c in t["StorageDescriptor"]["Columns"]] == ["visitor_id", "name", "named_at"]


def test_expire_visitors_role_grants_exactly_the_calls_made(template: Template,
                                                            tmp_path_factory: pytest.TempPathFactory,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduled retention function, run on the local stack with the visitors a run left
    (40 days later): every call it makes allowed by its role, every grant used."""
    import types
    from datetime import timedelta

    from vidsift.core.records import utc_now
    from vidsift.local.dispatcher import _acting_as
    from vidsift.local.stack import LocalStack
    from vidsift.stages import visitor_admin

    d = tmp_path_factory.mktemp("expire")
    video = make_video(d / "v.mp4", [Segment("astronaut", 2)], fps=5)
    assert run_videos([video], d / "out", progress=False, visitors=True, camera_id="door").ok
    monkeypatch.setattr(visitor_admin, "utc_now", lambda: utc_now() + timedelta(days=40))
    from functions import expire_visitors

    ctx = types.SimpleNamespace(function_name="expire_visitors", memory_limit_in_mb=256, aws_request_id="r",
                                invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:x")
    recorder = calls.Recorder()
    with LocalStack(visitors_out=d / "out"), recorder.recording(), _acting_as("expire_visitors", "handler"):
        assert expire_visitors.handler({}, ctx) == {"expired": ["v000001"]}
    none: defaultdict[str, str | None] = defaultdict(lambda: None)
    reqs: dict[calls.Request, list[calls.Call]] = {}
    for call in recorder.calls:
        for req in calls.requests(call, NAMES, calls.Keys(none, none, none)):
            reqs.setdefault(req, []).append(call)
    on = template.with_parameters(VisitorsEnabled="true")
    fid = next(k for k in on.of_type("AWS::Lambda::Function")
               if on.props(k)["FunctionName"] == f"{NAMES.stage_prefix}-expire_visitors")
    assert on.resources[fid]["Condition"] == "UseVisitors"
    role = calls.Role(role_statements(on, on.props(fid)["Role"].rsplit("/", 1)[1]))
    assert calls.denials(role, reqs) == []
    logs = "the Lambda runtime writes the function's logs from stdout, not botocore"
    unused, stale = calls.unused_grants(role, list(reqs), "expire_visitors", {
        ("expire_visitors", "logs:CreateLogStream", "arn:aws:logs:*"): logs,
        ("expire_visitors", "logs:PutLogEvents", "arn:aws:logs:*"): logs})
    assert unused == [] and stale == []
