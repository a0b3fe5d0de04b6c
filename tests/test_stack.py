"""The packaged CloudFormation stack agrees with contract.json and is locked down.

serverless.yml is packaged offline once per test run (scripts/package-offline.sh: osls +
cfn-lint, no AWS account) and the compiled template is evaluated, intrinsics and all, in
a fake account (tests/conftest_stack.py), with the KMS and Parquet switches both ways.
Each check returns its problems as text, so the tests at the end can prove every check
fails when the template drifts.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_stack import (
    ACCOUNT,
    PARTITION,
    REGION,
    STAGE,
    TEMPLATE_FILE,
    Template,
    as_list,
    grants,
    package_stack,
    role_statements,
    shared_folder,
)

from vidsift import contract
from vidsift.core import keys

ROOT = Path(__file__).resolve().parents[1]
C = contract.load()
NAMES = contract.ResourceNames(stage=STAGE, account=ACCOUNT)
MODES = [{"KmsEncryption": kms, "ParquetOutput": parquet} for kms in ("false", "true") for parquet in ("false", "true")]
MODE_IDS = [f"kms={m['KmsEncryption']},parquet={m['ParquetOutput']}" for m in MODES]

#: Actions whose IAM authorisation has no resource type, so AWS requires Resource "*".
#: rekognition:DetectFaces: Rekognition's image operations are not resource-scoped.
STAR_RESOURCE_OK = {"rekognition:DetectFaces"}
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"}
#: Lambda layers each function needs (layer key in serverless.yml -> logical id ...LambdaLayer).
#: analyze_faces needs the media layer's Pillow to crop faces for SearchFacesByImage.
#: track_people needs the tracking layer's norfair (and its NumPy and SciPy).
FUNCTION_LAYERS = {"split_frames": {"MediaLambdaLayer", "PowertoolsLambdaLayer"},
                   "detect_people": {"PowertoolsLambdaLayer"},
                   "track_people": {"TrackingLambdaLayer", "PowertoolsLambdaLayer"},
                   "analyze_faces": {"MediaLambdaLayer", "PowertoolsLambdaLayer"},
                   "alert_faces": {"MediaLambdaLayer", "PowertoolsLambdaLayer"},
                   "recount": {"PowertoolsLambdaLayer"},
                   "sweep_stalled": {"PowertoolsLambdaLayer"}}
LAYER_NAMES = {"MediaLambdaLayer": "media", "PowertoolsLambdaLayer": "powertools", "TrackingLambdaLayer": "tracking"}


@dataclass(frozen=True)
class Packaged:
    out: Path
    log: str
    template: Template


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """The run's shared offline `sls package` + cfn-lint (conftest_stack.package_stack, with a
    Mac's tools on PATH), the same one test_checkov and test_roles read."""
    try:
        out, log = package_stack(shared_folder(tmp_path_factory))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    return Packaged(out, log, Template.load(out / TEMPLATE_FILE))


@pytest.fixture(params=MODES, ids=MODE_IDS)
def tpl(packaged: Packaged, request: pytest.FixtureRequest) -> Template:
    return packaged.template.with_parameters(**request.param)


# -------------------------------------------------------------------- expected names


def arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def bucket_arn(role: str) -> str:
    return f"arn:{PARTITION}:s3:::{NAMES.bucket(role)}"


def queue_arn(name: str) -> str:
    return arn("sqs", name)


def stream_arn(table: str) -> str:
    return arn("firehose", f"deliverystream/{NAMES.stream(table)}")


def function_name(stage: str) -> str:
    return f"{NAMES.prefix}-{stage}"


def alert_topic_arn() -> str:
    from vidsift.core import alerts

    return arn("sns", alerts.topic_name(NAMES))


def ops_topic_arn() -> str:
    return arn("sns", f"{NAMES.prefix}-ops")


def alert_table_name() -> str:
    from vidsift.core import alerts

    return alerts.table_name(NAMES)


def face_collection_name() -> str:
    from vidsift.core import matching

    return matching.collection_name(NAMES)


def static_prefix(prefix: str) -> str:
    """The part of a Firehose prefix before its first !{...} expression."""
    return prefix.split("!{", 1)[0]


def function_id(tpl: Template, stage: str) -> str:
    found = [k for k, r in tpl.of_type("AWS::Lambda::Function").items()
             if tpl.eval(r["Properties"]["FunctionName"]) == function_name(stage)]
    assert len(found) == 1, f"function {function_name(stage)}: {found}"
    return found[0]


def find_by(tpl: Template, cfn_type: str, prop: str, value: Any) -> str | None:
    for k, r in tpl.of_type(cfn_type).items():
        if tpl.resource_included(k) and tpl.eval(r["Properties"].get(prop)) == value:
            return k
    return None


def kms_key(tpl: Template) -> str:
    return tpl.get_att("DataKey", "Arn")


def kms_on(tpl: Template) -> bool:
    return tpl.condition("UseKms")


def parquet_on(tpl: Template) -> bool:
    return tpl.condition("UseParquet")


def expected_recount_grants(tpl: Template) -> set[tuple[str, str]]:
    """recount (no queue, no idempotency, no error records): the stored layout and tracks rows in,
    each video's crossings and zone_visits objects out."""
    log_group = arn("logs", f"log-group:/aws/lambda/{function_name('recount')}:*")
    analytics = bucket_arn("analytics")
    pairs = {("logs:CreateLogStream", log_group), ("logs:PutLogEvents", log_group),
             ("s3:GetObject", f"{analytics}/{C['cameras_key']}"),
             ("s3:GetObject", f"{analytics}/{static_prefix(C['analytics_prefixes']['tracks'])}*"),
             ("s3:ListBucket", analytics)}
    pairs |= {("s3:PutObject", f"{analytics}/{C['count_tables'][t]}*") for t in contract.COUNT_TABLES}
    if kms_on(tpl):
        pairs |= {("kms:Decrypt", kms_key(tpl)), ("kms:GenerateDataKey", kms_key(tpl))}
    return pairs


def table_prefix(tpl: Template, table: str) -> str:
    """A table's Firehose prefix: under the contract's parquet_prefix with parquet=true, so
    Parquet never shares a location with JSON rows written before the switch."""
    return (C["parquet_prefix"] if parquet_on(tpl) else "") + C["analytics_prefixes"][table]


def expected_function_grants(tpl: Template, stage: str) -> set[tuple[str, str]]:
    if stage == "recount":
        return expected_recount_grants(tpl)
    log_group = arn("logs", f"log-group:/aws/lambda/{function_name(stage)}:*")
    queue = queue_arn(NAMES.queue(stage))
    table = arn("dynamodb", f"table/{NAMES.idempotency_table}")
    errors = keys.error_key(stage, "x").rsplit("/", 1)[0] + "/*"  # where record_bad_input writes
    pairs = {("logs:CreateLogStream", log_group), ("logs:PutLogEvents", log_group),
             ("s3:PutObject", f"{bucket_arn('analytics')}/{errors}")}
    pairs |= {(f"sqs:{a}", queue) for a in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")}
    pairs |= {(f"dynamodb:{a}", table) for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")}
    if kms_on(tpl):
        pairs |= {("kms:Decrypt", kms_key(tpl)), ("kms:GenerateDataKey", kms_key(tpl))}
    tracking_table = arn("dynamodb", f"table/{NAMES.tracking_table}")
    track_queue = queue_arn(NAMES.queue("track_people"))
    own = {
        "split_frames": {
            ("s3:GetObject", f"{bucket_arn('raw')}/{C['raw_upload_prefix']}*"),
            # each video read by the version its event names (an overwrite loses nothing)
            ("s3:GetObjectVersion", f"{bucket_arn('raw')}/{C['raw_upload_prefix']}*"),
            # HeadObject on a deleted video: 404 (bad input) rather than 403 (retry) needs ListBucket.
            ("s3:ListBucket", bucket_arn("raw")),
            ("s3:PutObject", f"{bucket_arn('frames')}/*"),
            # segments of a long video go back on its own queue (SPLIT_QUEUE_URL)
            ("sqs:SendMessage", queue_arn(NAMES.queue("split_frames"))),
            # the last segment reads the others' documents to write the video's summary
            ("s3:GetObject", f"{bucket_arn('frames')}/*/segments/*"),
            ("s3:ListBucket", bucket_arn("frames")),
            # the tracking barrier: frames written per segment, and the segments to track
            # (GetItem: a segment an UPDATED_NEW answer left an unchanged attribute out of)
            ("dynamodb:UpdateItem", tracking_table),
            ("dynamodb:GetItem", tracking_table),
            ("sqs:SendMessage", track_queue),
        },
        "detect_people": {
            ("s3:GetObject", f"{bucket_arn('frames')}/*"),
            # HeadObject on a replayed frame deleted since: 404 (bad input), not 403 (retried)
            ("s3:ListBucket", bucket_arn("frames")),
            # the edge's alert snapshots: HeadObject and the copy's source, under their prefix only
            ("s3:GetObject", f"{bucket_arn(contract.stage('detect_people')['snapshot_bucket'])}/"
                             f"{C['snapshot_prefix']}*"),
            ("s3:PutObject", f"{bucket_arn('people')}/*"),
            ("sagemaker:InvokeEndpoint", arn("sagemaker", f"endpoint/{NAMES.endpoint}")),
            # each batch's frames: done already?, their boxes, their progress; the batch that
            # completes its video tells track_people
            ("dynamodb:BatchGetItem", tracking_table),
            ("dynamodb:BatchWriteItem", tracking_table),
            ("dynamodb:UpdateItem", tracking_table),
            ("dynamodb:GetItem", tracking_table),
            ("sqs:SendMessage", track_queue),
            # person alerts: the frame link is presigned by this role
            ("s3:GetObject", f"{bucket_arn('people')}/*"),
        },
        "track_people": {
            ("sqs:SendMessage", track_queue),
            ("sqs:SendMessage", queue_arn(NAMES.queue("analyze_faces"))),
            ("dynamodb:GetItem", tracking_table),
            ("dynamodb:UpdateItem", tracking_table),
            ("dynamodb:Query", tracking_table),
            ("s3:PutObject", f"{bucket_arn('frames')}/tracking/*"),
            ("s3:GetObject", f"{bucket_arn('frames')}/tracking/*"),
            ("s3:PutObject", f"{bucket_arn('people')}/tracks/*"),
            ("firehose:PutRecordBatch", stream_arn("people")),
            ("firehose:PutRecordBatch", stream_arn("tracks")),
            # lines and zones: the camera layout (404 without one needs ListBucket), each video's objects
            ("s3:GetObject", f"{bucket_arn('analytics')}/{C['cameras_key']}"),
            ("s3:ListBucket", bucket_arn("analytics")),
            *(("s3:PutObject", f"{bucket_arn('analytics')}/{C['count_tables'][t]}*") for t in contract.COUNT_TABLES),
        },
        "analyze_faces": {
            ("s3:GetObject", f"{bucket_arn('people')}/*"),
            # HeadObject on a deleted frame: 404 (bad input), not 403 (retried to the DLQ)
            ("s3:ListBucket", bucket_arn("people")),
            ("rekognition:DetectFaces", "*"),
            ("firehose:PutRecordBatch", stream_arn("faces")),
            ("firehose:PutRecordBatch", stream_arn("tracks")),
            # known faces: only this stack's collection
            ("rekognition:DescribeCollection", arn("rekognition", f"collection/{face_collection_name()}")),
            ("rekognition:SearchFacesByImage", arn("rekognition", f"collection/{face_collection_name()}")),
        },
        "alert_faces": {
            # the snapshots' copies only: HeadObject, Rekognition's read, the crop, the alert link
            ("s3:GetObject", f"{bucket_arn('people')}/{contract.stage('alert_faces')['source_prefix']}*"),
            ("s3:ListBucket", bucket_arn("people")),
            ("rekognition:DetectFaces", "*"),
            ("firehose:PutRecordBatch", stream_arn("faces")),
            ("rekognition:DescribeCollection", arn("rekognition", f"collection/{face_collection_name()}")),
            ("rekognition:SearchFacesByImage", arn("rekognition", f"collection/{face_collection_name()}")),
        },
    }
    alerting = {("sns:Publish", alert_topic_arn())}
    alerting |= {(f"dynamodb:{a}", arn("dynamodb", f"table/{alert_table_name()}")) for a in ("GetItem", "PutItem")}
    return pairs | own[stage] | (alerting if stage in ("detect_people", "analyze_faces", "alert_faces") else set())


def expected_sweeper_grants(tpl: Template) -> set[tuple[str, str]]:
    """The stalled-video sweeper: no queue of its own, no idempotency; the open videos (the
    tracking table's index), their progress, the frames written, track_people's queue."""
    name = C["sweeper"]["name"]
    log_group = arn("logs", f"log-group:/aws/lambda/{function_name(name)}:*")
    tracking_table = arn("dynamodb", f"table/{NAMES.tracking_table}")
    errors = keys.error_key(name, "x").rsplit("/", 1)[0] + "/*"
    pairs = {("logs:CreateLogStream", log_group), ("logs:PutLogEvents", log_group),
             ("s3:PutObject", f"{bucket_arn('analytics')}/{errors}"),
             ("dynamodb:Query", f"{tracking_table}/index/{C['tracking_open_index']}"),
             ("dynamodb:GetItem", tracking_table), ("dynamodb:BatchGetItem", tracking_table),
             ("dynamodb:UpdateItem", tracking_table), ("s3:ListBucket", bucket_arn("frames")),
             ("sqs:SendMessage", queue_arn(NAMES.queue("track_people")))}
    if kms_on(tpl):
        pairs |= {("kms:Decrypt", kms_key(tpl)), ("kms:GenerateDataKey", kms_key(tpl))}
    return pairs


def expected_firehose_grants(tpl: Template) -> set[tuple[str, str]]:
    analytics = bucket_arn("analytics")
    prefixes = [table_prefix(tpl, k) for k in contract.TABLES] + [C["analytics_prefixes"]["firehose_errors"]]
    pairs = {(a, analytics) for a in ("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")}
    pairs |= {(a, f"{analytics}/{static_prefix(p)}*") for a in ("s3:AbortMultipartUpload", "s3:GetObject",
                                                                "s3:PutObject") for p in prefixes}
    pairs.add(("logs:PutLogEvents", arn("logs", f"log-group:/aws/kinesisfirehose/{NAMES.prefix}:*")))
    if parquet_on(tpl):
        db = glue_database_name()
        targets = [arn("glue", "catalog"), arn("glue", f"database/{db}")]
        targets += [arn("glue", f"table/{db}/{t}") for t in contract.TABLES]
        pairs |= {(a, r) for a in ("glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions")
                  for r in targets}
    if kms_on(tpl):
        pairs |= {("kms:Decrypt", kms_key(tpl)), ("kms:GenerateDataKey", kms_key(tpl))}
    return pairs


def glue_database_name() -> str:
    return f"{C['glue_database']}_{STAGE}".replace("-", "_")


# -------------------------------------------------------------------- checks


def iam_problems(tpl: Template) -> list[str]:
    problems: list[str] = []
    # A role of an opt-in feature that is off is not in the stack (expire_visitors: visitors=true).
    roles = {r for r in tpl.of_type("AWS::IAM::Role") if tpl.resource_included(r)}
    used: dict[str, str] = {}
    for stage in contract.FUNCTIONS:
        fid = function_id(tpl, stage)
        role = tpl.resources[fid]["Properties"]["Role"]["Fn::GetAtt"][0]
        if role in used.values():
            problems.append(f"{stage} shares role {role}")
        used[stage] = role
    firehose_role = tpl.resources[find_by(tpl, "AWS::KinesisFirehose::DeliveryStream", "DeliveryStreamName",
                                          NAMES.stream("people"))]
    firehose_role_id = firehose_role["Properties"]["ExtendedS3DestinationConfiguration"]["RoleARN"]["Fn::GetAtt"][0]
    extra = roles - set(used.values()) - {firehose_role_id}
    if extra:
        problems.append(f"roles no function or stream uses: {sorted(extra)}")
    checks: list[tuple[str, str, str, set[tuple[str, str]]]] = [
        (stage, role, "lambda.amazonaws.com",
         expected_sweeper_grants(tpl) if stage == C["sweeper"]["name"] else expected_function_grants(tpl, stage))
        for stage, role in used.items()
    ]
    checks.append(("firehose", firehose_role_id, "firehose.amazonaws.com", expected_firehose_grants(tpl)))
    for who, role, service, expected in checks:
        props = tpl.props(role)
        trust = props["AssumeRolePolicyDocument"]["Statement"]
        if [s["Principal"] for s in trust] != [{"Service": service}]:
            problems.append(f"{who}: role trusts {[s['Principal'] for s in trust]}, expected only {service}")
        if props.get("ManagedPolicyArns"):
            problems.append(f"{who}: managed policies {props.get('ManagedPolicyArns')}")
        statements = role_statements(tpl, role)
        for st in statements:
            if st["Effect"] != "Allow":
                problems.append(f"{who}: unexpected {st['Effect']} statement")
            for action in as_list(st["Action"]):
                if "*" in action:
                    problems.append(f"{who}: wildcard action {action}")
                if "*" in as_list(st["Resource"]) and action not in STAR_RESOURCE_OK:
                    problems.append(f"{who}: {action} on Resource '*'")
        actual = grants(statements)
        for action, resource in sorted(actual - expected):
            problems.append(f"{who}: grants {action} on {resource}, which it does not need")
        for action, resource in sorted(expected - actual):
            problems.append(f"{who}: lacks {action} on {resource}")
    return problems


def tls_deny_ok(statement: dict[str, Any], action: str, resources: set[str]) -> bool:
    cond = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    return (statement["Effect"] == "Deny" and statement.get("Principal") in ("*", {"AWS": "*"})
            and as_list(statement["Action"]) == [action] and set(as_list(statement["Resource"])) >= resources
            and str(cond).lower() == "false")


def bucket_problems(tpl: Template) -> list[str]:
    problems: list[str] = []
    ours = {NAMES.bucket(role): role for role in C["buckets"]}
    policies = {tpl.props(k)["Bucket"]: tpl.props(k)["PolicyDocument"]["Statement"]
                for k in tpl.of_type("AWS::S3::BucketPolicy")}
    seen = set()
    for bid in tpl.of_type("AWS::S3::Bucket"):
        props = tpl.props(bid)
        name = tpl.ref(bid)
        seen.add(name)
        pab = props.get("PublicAccessBlockConfiguration", {})
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if pab.get(flag) is not True:
                problems.append(f"{bid}: {flag} is not on")
        rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        algos = [r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules]
        want = "aws:kms" if (kms_on(tpl) and name in ours) else "AES256"
        if algos != [want]:
            problems.append(f"{bid}: default encryption {algos}, expected [{want}]")
        if want == "aws:kms" and rules[0]["ServerSideEncryptionByDefault"].get("KMSMasterKeyID") != kms_key(tpl):
            problems.append(f"{bid}: SSE-KMS without the stack's key")
        barn = f"arn:{PARTITION}:s3:::{name}"
        if not any(tls_deny_ok(s, "s3:*", {barn, f"{barn}/*"}) for s in policies.get(name, [])):
            problems.append(f"{bid}: no bucket policy statement denying non-TLS requests")
        if name not in ours:
            continue
        lifecycle = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if not any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") for r in lifecycle):
            problems.append(f"{bid}: no rule aborting incomplete multipart uploads")
        expiry = [r for r in lifecycle if "ExpirationInDays" in r and "Prefix" not in r and "Filter" not in r]
        if ours[name] in ("frames", "people"):
            days = expiry[0]["ExpirationInDays"] if len(expiry) == 1 else None
            if not (isinstance(days, int) and days > 0):
                problems.append(f"{bid}: frames must expire after a number of days, rules: {lifecycle}")
        elif expiry:
            problems.append(f"{bid}: {ours[name]} objects must not expire wholesale: {expiry}")
    missing = set(ours) - seen
    if missing:
        problems.append(f"buckets missing: {sorted(missing)}")
    return problems


def queue_problems(tpl: Template) -> list[str]:
    problems: list[str] = []
    policies = {}
    for k in tpl.of_type("AWS::SQS::QueuePolicy"):
        p = tpl.props(k)
        for url in p["Queues"]:
            policies[url] = (k, p["PolicyDocument"]["Statement"])
    for stage in contract.STAGES:
        spec = contract.stage(stage)
        qid = find_by(tpl, "AWS::SQS::Queue", "QueueName", NAMES.queue(stage))
        did = find_by(tpl, "AWS::SQS::Queue", "QueueName", NAMES.dlq(stage))
        if not qid or not did:
            problems.append(f"{stage}: queue {NAMES.queue(stage)} or DLQ {NAMES.dlq(stage)} missing")
            continue
        q, d = tpl.props(qid), tpl.props(did)
        redrive = q.get("RedrivePolicy", {})
        if redrive.get("deadLetterTargetArn") != queue_arn(NAMES.dlq(stage)):
            problems.append(f"{stage}: redrive target {redrive.get('deadLetterTargetArn')}")
        if redrive.get("maxReceiveCount") != spec["max_receive_count"]:
            problems.append(f"{stage}: maxReceiveCount {redrive.get('maxReceiveCount')} != {spec['max_receive_count']}")
        if q.get("VisibilityTimeout") != 6 * spec["timeout_s"]:
            problems.append(f"{stage}: visibility timeout {q.get('VisibilityTimeout')} != 6 x {spec['timeout_s']}")
        if d.get("MessageRetentionPeriod", 0) <= q.get("MessageRetentionPeriod", 345600):
            problems.append(f"{stage}: DLQ must keep messages longer than the queue")
        for what, props in (("queue", q), ("DLQ", d)):
            # SQS managed SSE, or with kms=true the stack's key (never both: SQS refuses that)
            want_sse = ({"KmsMasterKeyId": tpl.ref("DataKey")} if kms_on(tpl) else {"SqsManagedSseEnabled": True})
            got_sse = {k: props[k] for k in ("KmsMasterKeyId", "SqsManagedSseEnabled") if k in props}
            if got_sse != want_sse:
                problems.append(f"{stage}: {what} encryption {got_sse}, expected {want_sse}")
        qurl, durl = tpl.ref(qid), tpl.ref(did)
        # The buckets that notify this queue: its source, and the edge snapshots' bucket.
        roles = sorted({n.bucket for n in contract.notifications() if n.stage == stage})
        sources = sorted(bucket_arn(r) for r in roles)
        pid, statements = policies.get(qurl, (None, []))
        allows = [s for s in statements if s["Effect"] == "Allow"]
        got_allows = []
        for st in allows:
            st = {k: v for k, v in st.items() if k != "Sid"}
            arns = st.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")
            if arns is not None:  # one ARN or a list of them: the same condition to IAM
                st["Condition"] = {**st["Condition"], "ArnEquals": {"aws:SourceArn": sorted(as_list(arns))}}
            got_allows.append(st)
        want_allow = {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
                      "Resource": queue_arn(NAMES.queue(stage)),
                      "Condition": {"ArnEquals": {"aws:SourceArn": sources},
                                    "StringEquals": {"aws:SourceAccount": ACCOUNT}}}
        if got_allows != ([want_allow] if sources else []):  # no source bucket: only the stages send to it
            problems.append(f"{stage}: queue policy allows {allows}, expected only S3 from {sources}")
        if not any(tls_deny_ok(s, "sqs:*", {queue_arn(NAMES.queue(stage))}) for s in statements):
            problems.append(f"{stage}: queue policy does not deny non-TLS")
        _, dlq_statements = policies.get(durl, (None, []))
        if not any(tls_deny_ok(s, "sqs:*", {queue_arn(NAMES.dlq(stage))}) for s in dlq_statements) or any(
                s["Effect"] == "Allow" for s in dlq_statements):
            problems.append(f"{stage}: DLQ policy must only deny non-TLS")
        for role in roles:
            bid = find_by(tpl, "AWS::S3::Bucket", "BucketName", NAMES.bucket(role))
            if pid is None or bid is None or pid not in as_list(tpl.resources[bid].get("DependsOn", [])):
                problems.append(f"{stage}: source bucket {role} must DependsOn the queue policy {pid}")
    return problems


def notification_problems(tpl: Template) -> list[str]:
    problems: list[str] = []
    expected: dict[str, set[tuple[str, str, str | None, str]]] = {NAMES.bucket(r): set() for r in C["buckets"]}
    for n in contract.notifications():  # the rule the local stack follows too
        expected[NAMES.bucket(n.bucket)].add((n.event, queue_arn(NAMES.queue(n.stage)), n.prefix, n.suffix))
    for name, want in expected.items():
        bid = find_by(tpl, "AWS::S3::Bucket", "BucketName", name)
        if bid is None:
            problems.append(f"bucket {name} missing")
            continue
        nc = tpl.props(bid).get("NotificationConfiguration", {})
        if set(nc) - {"QueueConfigurations"}:
            problems.append(f"{bid}: unexpected notifications {sorted(set(nc) - {'QueueConfigurations'})}")
        got = set()
        compiled = []
        for qc in nc.get("QueueConfigurations", []):
            rules = {r["Name"].lower(): r["Value"] for r in qc.get("Filter", {}).get("S3Key", {}).get("Rules", [])}
            got.add((qc["Event"], qc["Queue"], rules.get("prefix"), rules.get("suffix")))
            stage = next((st for st in contract.STAGES if queue_arn(NAMES.queue(st)) == qc["Queue"]), qc["Queue"])
            compiled.append(contract.Notification(name, stage, rules.get("prefix"), rules.get("suffix", ""),
                                                  qc["Event"]))
        if got != want:
            problems.append(f"{bid}: notifications {sorted(got, key=str)} != {sorted(want, key=str)}")
        # S3 refuses a whole configuration whose filters overlap (deploy would fail).
        problems += [f"{bid}: {p}" for p in contract.notification_overlaps(compiled)]
    return problems


def event_source_problems(tpl: Template) -> list[str]:
    problems: list[str] = []
    mappings = [tpl.props(k) for k in tpl.of_type("AWS::Lambda::EventSourceMapping")]
    if len(mappings) != len(contract.STAGES):
        problems.append(f"{len(mappings)} event source mappings, expected {len(contract.STAGES)}")
    for stage in contract.STAGES:
        spec = contract.stage(stage)
        fn_arn = arn("lambda", f"function:{function_name(stage)}")
        mine = [m for m in mappings if m["FunctionName"] == fn_arn]
        if len(mine) != 1:
            problems.append(f"{stage}: {len(mine)} event source mappings")
            continue
        m = mine[0]
        got = {"source": m["EventSourceArn"], "batch": m.get("BatchSize"),
               "window": m.get("MaximumBatchingWindowInSeconds", 0),
               "responses": m.get("FunctionResponseTypes"),
               "concurrency": m.get("ScalingConfig", {}).get("MaximumConcurrency"),
               "enabled": m.get("Enabled", True)}
        want = {"source": queue_arn(NAMES.queue(stage)), "batch": spec["batch_size"],
                "window": spec["batching_window_s"], "responses": ["ReportBatchItemFailures"],
                "concurrency": spec["max_concurrency"], "enabled": True}
        if got != want:
            problems.append(f"{stage}: event source {got} != {want}")
    return problems


def function_problems(tpl: Template) -> list[str]:
    problems: list[str] = []
    for stage in contract.FUNCTIONS:
        spec = contract.function(stage)
        fid = function_id(tpl, stage)
        p = tpl.props(fid)
        got = {"handler": p["Handler"], "runtime": p["Runtime"], "memory": p["MemorySize"], "timeout": p["Timeout"],
               "tmp": p.get("EphemeralStorage", {}).get("Size", 512),
               "logs": p.get("LoggingConfig", {}).get("LogFormat"),
               "layers": {ref["Ref"] for ref in tpl.resources[fid]["Properties"].get("Layers", [])}}
        want = {"handler": spec["handler"], "runtime": "python3.12", "memory": spec["memory_mb"],
                "timeout": spec["timeout_s"], "tmp": spec["ephemeral_storage_mb"], "logs": "JSON",
                "layers": FUNCTION_LAYERS[stage]}
        if got != want:
            problems.append(f"{stage}: {got} != {want}")
        env = p.get("Environment", {}).get("Variables", {})
        if set(env) != set(C["env"]) | POWERTOOLS_ENV:
            problems.append(f"{stage}: env keys differ from contract env + Powertools: "
                            f"extra {sorted(set(env) - set(C['env']) - POWERTOOLS_ENV)}, "
                            f"missing {sorted((set(C['env']) | POWERTOOLS_ENV) - set(env))}")
        expected_env = dict(NAMES.function_env())
        expected_env.update({"FACE_COLLECTION": face_collection_name(), "ALERT_TOPIC_ARN": alert_topic_arn(),
                             "ALERT_TABLE": alert_table_name()})
        # split_frames queues a long video's segments for itself; the stages tell track_people
        # a video is detected, and track_people tells analyze_faces its tracks.
        for var, queue_stage in (("SPLIT_QUEUE_URL", "split_frames"), ("TRACK_QUEUE_URL", "track_people"),
                                 ("FACES_QUEUE_URL", "analyze_faces")):
            expected_env[var] = tpl.ref(find_by(tpl, "AWS::SQS::Queue", "QueueName", NAMES.queue(queue_stage)))
        for key, value in expected_env.items():
            if env.get(key) != value:
                problems.append(f"{stage}: {key}={env.get(key)!r}, contract says {value!r}")
        problems += settings_problems(stage, env)
        if env.get("POWERTOOLS_SERVICE_NAME") != stage:
            problems.append(f"{stage}: POWERTOOLS_SERVICE_NAME={env.get('POWERTOOLS_SERVICE_NAME')!r}")
    return problems


def settings_problems(stage: str, env: dict[str, Any]) -> list[str]:
    """The handlers' own settings parsers accept the environment the stack gives them."""
    from vidsift.settings import Settings

    parts: list[str] = []
    if stage in ("detect_people", "analyze_faces", "alert_faces"):
        parts += ["match", "alerts"]
    if stage == "split_frames" and importlib.util.find_spec("vidsift.stages.splitting"):
        parts.append("split")
    if stage in ("track_people", "analyze_faces"):
        parts += ["faces", "track"]
    settings = Settings.parse({k: str(v) for k, v in env.items()})
    problems = []
    for part in ("shared settings", *parts):
        try:
            settings.check() if part == "shared settings" else getattr(settings, part)
        except Exception as exc:
            problems.append(f"{stage}: the {part} reject the stack's environment: {exc}")
    return problems


def firehose_problems(tpl: Template) -> list[str]:
    problems: list[str] = []
    streams = tpl.of_type("AWS::KinesisFirehose::DeliveryStream")
    if len(streams) != len(C["streams"]):
        problems.append(f"{len(streams)} delivery streams, expected {len(C['streams'])}")
    for table in C["streams"]:
        sid = find_by(tpl, "AWS::KinesisFirehose::DeliveryStream", "DeliveryStreamName", NAMES.stream(table))
        if sid is None:
            problems.append(f"stream {NAMES.stream(table)} missing")
            continue
        p = tpl.props(sid)
        d = p["ExtendedS3DestinationConfiguration"]
        if p.get("DeliveryStreamEncryptionConfigurationInput", {}).get("KeyType") not in (
                "AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK"):
            problems.append(f"{sid}: stream not encrypted")
        got = {"bucket": d["BucketARN"], "prefix": d["Prefix"], "errors": d["ErrorOutputPrefix"],
               "logging": d.get("CloudWatchLoggingOptions", {}).get("Enabled")}
        want = {"bucket": bucket_arn("analytics"), "prefix": table_prefix(tpl, table),
                "errors": C["analytics_prefixes"]["firehose_errors"], "logging": True}
        if got != want:
            problems.append(f"{sid}: {got} != {want}")
        conversion = d.get("DataFormatConversionConfiguration")
        if parquet_on(tpl):
            schema = (conversion or {}).get("SchemaConfiguration", {})
            if not (conversion and conversion.get("Enabled") and "ParquetSerDe" in str(conversion)
                    and schema.get("DatabaseName") == glue_database_name() and schema.get("TableName") == table
                    and d["CompressionFormat"] == "UNCOMPRESSED" and d["BufferingHints"]["SizeInMBs"] >= 64):
                problems.append(f"{sid}: Parquet conversion misconfigured: {conversion}, {d['BufferingHints']}")
        elif conversion is not None or d["CompressionFormat"] != "GZIP":
            problems.append(f"{sid}: expected GZIP JSON, got {d['CompressionFormat']} / {conversion}")
        enc = d.get("EncryptionConfiguration", {})
        want_enc = ({"KMSEncryptionConfig": {"AWSKMSKeyARN": kms_key(tpl)}} if kms_on(tpl)
                    else {"NoEncryptionConfig": "NoEncryption"})  # then the bucket's SSE-S3 default applies
        if enc != want_enc:
            problems.append(f"{sid}: S3 encryption {enc} != {want_enc}")
    return problems


def glue_problems(tpl: Template) -> list[str]:
    problems: list[str] = []
    if tpl.ref("GlueDatabase") != glue_database_name():
        problems.append(f"Glue database {tpl.ref('GlueDatabase')} != {glue_database_name()}")
    tables = {tpl.props(k)["TableInput"]["Name"]: tpl.props(k) for k in tpl.of_type("AWS::Glue::Table")}
    # visitor_names: written whole by `vidsift visitors name`, not by Firehose (tests/test_roles_visitors.py).
    names_table = tables.pop("visitor_names", None)
    if names_table is None or names_table["TableInput"]["StorageDescriptor"]["Columns"] != \
            C["visitor_tables"]["visitor_names"]["columns"]:
        problems.append("Glue table visitor_names missing or its columns differ from the contract")
    if set(tables) != set(contract.ALL_TABLES):
        problems.append(f"Glue tables {sorted(tables)} != {sorted(contract.ALL_TABLES)}")
    for name, props in tables.items():
        spec = C["tables"].get(name, {})
        ti = props["TableInput"]
        sd = ti["StorageDescriptor"]
        if props["DatabaseName"] != glue_database_name():
            problems.append(f"{name}: in database {props['DatabaseName']}")
        if sd["Columns"] != spec.get("columns"):
            problems.append(f"{name}: columns differ from the contract (names, order or types)")
        if ti.get("PartitionKeys") != spec.get("partition_keys"):
            problems.append(f"{name}: partition keys {ti.get('PartitionKeys')} != {spec.get('partition_keys')}")
        # lines and zones: track_people's objects, always JSON lines (not Firehose's)
        counted = name in contract.COUNT_TABLES
        prefix = C["count_tables"][name] if counted else table_prefix(tpl, name)
        location = f"s3://{NAMES.bucket('analytics')}/{prefix.split('dt=', 1)[0]}"
        if sd["Location"] != location:
            problems.append(f"{name}: location {sd['Location']} != {location}")
        params = ti.get("Parameters", {})
        want_params = {"projection.enabled": "true", "projection.dt.type": "date",
                       "projection.dt.format": "yyyy-MM-dd", "projection.dt.interval": "1",
                       "projection.dt.interval.unit": "DAYS"}
        if {k: params.get(k) for k in want_params} != want_params or not str(
                params.get("projection.dt.range", "")).endswith(",NOW"):
            problems.append(f"{name}: partition projection on dt misconfigured: {params}")
        serde = sd["SerdeInfo"]["SerializationLibrary"]
        want_serde = ("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe" if parquet_on(tpl) and not counted
                      else "org.openx.data.jsonserde.JsonSerDe")
        if serde != want_serde:
            problems.append(f"{name}: SerDe {serde} != {want_serde}")
    return problems


def athena_problems(tpl: Template) -> list[str]:
    problems: list[str] = []
    wg = tpl.props("AthenaWorkGroup")
    cfg = wg["WorkGroupConfiguration"]
    rc = cfg["ResultConfiguration"]
    want_loc = f"s3://{NAMES.bucket('analytics')}/{C['athena_results_prefix']}"
    want_enc = ({"EncryptionOption": "SSE_KMS", "KmsKey": kms_key(tpl)} if kms_on(tpl)
                else {"EncryptionOption": "SSE_S3"})
    if wg["Name"] != f"{C['athena_workgroup']}-{STAGE}":
        problems.append(f"workgroup name {wg['Name']}")
    if rc["OutputLocation"] != want_loc or rc.get("EncryptionConfiguration") != want_enc:
        problems.append(f"workgroup results {rc} != {want_loc} {want_enc}")
    if cfg.get("EnforceWorkGroupConfiguration") is not True:
        problems.append("workgroup configuration not enforced")
    queries = {tpl.props(k)["Name"]: tpl.props(k) for k in tpl.of_type("AWS::Athena::NamedQuery")}
    files = sorted((ROOT / "vidsift" / "sql").glob("*.sql"))
    for f in files:
        text = f.read_text()
        name = text.splitlines()[0].removeprefix("-- name:").strip()
        q = queries.pop(name, None)
        if q is None:
            problems.append(f"{f.name}: no named query {name!r}")
            continue
        if q["QueryString"] != text:
            problems.append(f"{name}: QueryString is not {f.name}")
        if q["Database"] != glue_database_name() or q["WorkGroup"] != wg["Name"]:
            problems.append(f"{name}: database {q['Database']} / workgroup {q['WorkGroup']}")
    if queries:
        problems.append(f"named queries without a vidsift/sql file: {sorted(queries)}")
    if len(files) < 5:
        problems.append(f"expected at least 5 SQL files, found {len(files)}")
    return problems


def table_problems(tpl: Template) -> list[str]:
    tid = find_by(tpl, "AWS::DynamoDB::Table", "TableName", NAMES.idempotency_table)
    if tid is None:
        return [f"idempotency table {NAMES.idempotency_table} missing"]
    p = tpl.props(tid)
    got = {"billing": p.get("BillingMode"), "keys": p.get("KeySchema"), "attrs": p.get("AttributeDefinitions"),
           "ttl": p.get("TimeToLiveSpecification"), "sse": p.get("SSESpecification", {}).get("SSEEnabled")}
    want = {"billing": "PAY_PER_REQUEST", "keys": [{"AttributeName": "id", "KeyType": "HASH"}],
            "attrs": [{"AttributeName": "id", "AttributeType": "S"}],
            "ttl": {"AttributeName": "expiration", "Enabled": True}, "sse": True}
    return [] if got == want else [f"idempotency table {got} != {want}"]


def output_problems(tpl: Template) -> list[str]:
    outputs = {k: tpl.eval(v["Value"]) for k, v in tpl.doc["Outputs"].items()}
    want: dict[str, str] = {
        "RawBucketName": NAMES.bucket("raw"), "FramesBucketName": NAMES.bucket("frames"),
        "PeopleBucketName": NAMES.bucket("people"), "AnalyticsBucketName": NAMES.bucket("analytics"),
        "PeopleStreamName": NAMES.stream("people"), "FacesStreamName": NAMES.stream("faces"),
        "IdempotencyTableName": NAMES.idempotency_table, "GlueDatabaseName": glue_database_name(),
        "AthenaWorkGroupName": f"{C['athena_workgroup']}-{STAGE}", "EndpointName": NAMES.endpoint,
        "AlertTopicArn": alert_topic_arn(), "FaceCollectionId": face_collection_name(),
        "AlertStateTableName": alert_table_name(), "OpsTopicArn": ops_topic_arn(),
        # what the SageMaker endpoint's role must read besides the frames: the edge's snapshots
        "SnapshotObjectsArn": f"{bucket_arn(contract.stage('detect_people')['snapshot_bucket'])}/"
                              f"{C['snapshot_prefix']}*",
    }
    for stage in contract.STAGES:
        camel = "".join(part.title() for part in stage.split("_"))
        want[f"{camel}QueueUrl"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{NAMES.queue(stage)}"
        want[f"{camel}DlqUrl"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{NAMES.dlq(stage)}"
    return [f"output {k}: {outputs.get(k)!r} != {v!r}" for k, v in want.items() if outputs.get(k) != v]


def alert_problems(tpl: Template) -> list[str]:
    """The topic is encrypted with SNS's AWS managed key, the collection and the alert-state
    table carry the names the functions are given."""
    problems: list[str] = []
    topics = {k: tpl.props(k) for k in tpl.of_type("AWS::SNS::Topic")
              if tpl.ref(k) != ops_topic_arn()}  # alarm_problems checks the operations topic
    want_topic = alert_topic_arn().rsplit(":", 1)[1]
    if [p.get("TopicName") for p in topics.values()] != [want_topic]:
        problems.append(f"SNS topics {[p.get('TopicName') for p in topics.values()]}, expected [{want_topic}]")
    for k, p in topics.items():
        if p.get("KmsMasterKeyId") != "alias/aws/sns":
            problems.append(f"{k}: KmsMasterKeyId {p.get('KmsMasterKeyId')!r}, expected alias/aws/sns")
    collections = [tpl.props(k).get("CollectionId") for k in tpl.of_type("AWS::Rekognition::Collection")
                   if tpl.resource_included(k)]  # the visitors collection exists with visitors=true only
    if collections != [face_collection_name()]:
        problems.append(f"Rekognition collections {collections}, expected [{face_collection_name()}]")
    tid = find_by(tpl, "AWS::DynamoDB::Table", "TableName", alert_table_name())
    if tid is None:
        return [*problems, f"alert-state table {alert_table_name()} missing"]
    p = tpl.props(tid)
    got = {"billing": p.get("BillingMode"), "keys": p.get("KeySchema"), "ttl": p.get("TimeToLiveSpecification"),
           "sse": p.get("SSESpecification", {}).get("SSEEnabled")}
    want = {"billing": "PAY_PER_REQUEST", "keys": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "ttl": {"AttributeName": "expires_at", "Enabled": True}, "sse": True}
    if got != want:
        problems.append(f"alert-state table {got} != {want}")
    return problems


#: What each alarm watches: (namespace, metric, dimension name) per kind of resource.
ALARM_METRICS = {"dlq": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName"),
                 "function": ("AWS/Lambda", "Errors", "FunctionName"),
                 "stream": ("AWS/Firehose", "DeliveryToS3.Success", "DeliveryStreamName")}


def alarm_problems(tpl: Template) -> list[str]:
    """Every DLQ, function and delivery stream has an alarm that notifies the operations topic
    (on ALARM and on OK); the topic is the stack's, encrypted with the stack's key with
    kms=true (CloudWatch cannot publish through alias/aws/sns)."""
    problems: list[str] = []
    topics = [k for k in tpl.of_type("AWS::SNS::Topic") if tpl.ref(k) == ops_topic_arn()]
    if len(topics) != 1:
        return [f"operations topic {ops_topic_arn()}: {len(topics)} such topics"]
    topic = tpl.props(topics[0])
    want_key = tpl.ref("DataKey") if kms_on(tpl) else None
    if topic.get("KmsMasterKeyId") != want_key:
        problems.append(f"ops topic KmsMasterKeyId {topic.get('KmsMasterKeyId')!r}, expected {want_key!r}")
    if kms_on(tpl):
        key_services = {s["Principal"].get("Service") for s in tpl.props("DataKey")["KeyPolicy"]["Statement"]
                        if s["Effect"] == "Allow" and "kms:GenerateDataKey" in as_list(s["Action"])}
        if "cloudwatch.amazonaws.com" not in key_services:
            problems.append("the data key does not let CloudWatch alarms publish to the ops topic")
    watched: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for k in tpl.of_type("AWS::CloudWatch::Alarm"):
        p = tpl.props(k)
        for dim in p.get("Dimensions", []):
            watched.setdefault((p["Namespace"], p["MetricName"], dim["Name"], dim["Value"]), []).append(p)
    targets = [("dlq", NAMES.dlq(stage)) for stage in contract.STAGES]
    targets += [("function", function_name(stage)) for stage in contract.STAGES]
    targets += [("stream", NAMES.stream(table)) for table in C["streams"]]
    for kind, name in targets:
        namespace, metric, dimension = ALARM_METRICS[kind]
        alarms = watched.get((namespace, metric, dimension, name), [])
        if not alarms:
            problems.append(f"{kind} {name}: no {namespace} {metric} alarm")
        for a in alarms:
            if a.get("AlarmActions") != [ops_topic_arn()] or a.get("OKActions") != [ops_topic_arn()]:
                problems.append(f"{a['AlarmName']}: actions {a.get('AlarmActions')} / {a.get('OKActions')}, "
                                f"expected the ops topic")
            fires = ((a["ComparisonOperator"], a["Threshold"]) == ("LessThanThreshold", 1) if kind == "stream"
                     else (a["ComparisonOperator"], a["Threshold"]) == ("GreaterThanThreshold", 0))
            if not fires:
                problems.append(f"{a['AlarmName']}: {a['ComparisonOperator']} {a['Threshold']} misses a single failure")
    return problems


CHECKS: dict[str, Callable[[Template], list[str]]] = {
    "iam": iam_problems, "buckets": bucket_problems, "queues": queue_problems,
    "notifications": notification_problems, "event_sources": event_source_problems,
    "functions": function_problems, "firehose": firehose_problems, "glue": glue_problems,
    "athena": athena_problems, "idempotency_table": table_problems, "outputs": output_problems,
    "alerts": alert_problems, "alarms": alarm_problems,
}


# -------------------------------------------------------------------- tests


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_template_matches_contract(tpl: Template, check: str) -> None:
    assert CHECKS[check](tpl) == []


def test_raw_bucket_sends_edge_snapshots_to_detect_people(packaged: Packaged) -> None:
    """The alert fast lane in the compiled template, spelled out: besides one filter per video
    suffix to split_frames, the raw bucket sends uploads/snapshots/*.jpg to detect_people's
    queue, whose policy lets the raw bucket send, and detect_people may read those objects."""
    tpl = packaged.template.with_parameters(KmsEncryption="false", ParquetOutput="false")
    raw = tpl.props(find_by(tpl, "AWS::S3::Bucket", "BucketName", NAMES.bucket("raw")))
    configs = [(qc["Queue"], {r["Name"]: r["Value"] for r in qc["Filter"]["S3Key"]["Rules"]})
               for qc in raw["NotificationConfiguration"]["QueueConfigurations"]]
    detect, split = queue_arn(NAMES.queue("detect_people")), queue_arn(NAMES.queue("split_frames"))
    assert [rules for q, rules in configs if q == detect] == [{"prefix": "uploads/snapshots/", "suffix": ".jpg"}]
    videos = [rules for q, rules in configs if q == split]
    assert sorted(r["suffix"] for r in videos) == sorted(C["video_suffixes"]) and ".jpg" not in C["video_suffixes"]
    policy = tpl.props("DetectPeopleQueuePolicy")["PolicyDocument"]["Statement"][0]
    assert bucket_arn("raw") in as_list(policy["Condition"]["ArnEquals"]["aws:SourceArn"])
    reads = {r for a, r in grants(role_statements(tpl, "DetectPeopleRole")) if a == "s3:GetObject"}
    assert f"{bucket_arn('raw')}/uploads/snapshots/*" in reads and f"{bucket_arn('raw')}/*" not in reads
    windows = {tpl.props(k)["FunctionName"]: tpl.props(k).get("MaximumBatchingWindowInSeconds")
               for k in tpl.of_type("AWS::Lambda::EventSourceMapping")}
    assert windows[arn("lambda", f"function:{function_name('detect_people')}")] == 1
    assert windows[arn("lambda", f"function:{function_name('analyze_faces')}")] == 1


def test_what_cannot_be_recreated_survives_sls_remove(packaged: Packaged) -> None:
    """Footage, the analytics, the known faces and the key that encrypts them are retained by
    `sls remove` and on replacement; working data (frames, queues, tables) is not."""
    tpl, res = packaged.template, packaged.template.resources

    def bucket(role: str) -> str:
        return str(find_by(tpl, "AWS::S3::Bucket", "BucketName", NAMES.bucket(role)))

    for lid in (bucket("raw"), bucket("analytics"), "KnownFacesCollection", "DataKey"):
        assert (res[lid].get("DeletionPolicy"), res[lid].get("UpdateReplacePolicy")) == ("Retain", "Retain"), lid
    for role in ("frames", "people"):
        assert "DeletionPolicy" not in res[bucket(role)]


def test_raw_bucket_keeps_every_version_for_a_while(packaged: Packaged) -> None:
    """An overwrite or a delete of a video keeps the previous version (noncurrent versions
    expire after rawNoncurrentDays); the pipeline processes each version once, since a
    video's id and its idempotency key include the version's ETag."""
    tpl = packaged.template.with_parameters(KmsEncryption="false", ParquetOutput="false")
    raw = tpl.props(find_by(tpl, "AWS::S3::Bucket", "BucketName", NAMES.bucket("raw")))
    assert raw["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in raw["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert "ExpirationInDays" not in rules["expire-noncurrent-versions"]  # current footage never expires


def test_packaging_lints_clean(packaged: Packaged) -> None:
    """The script ran cfn-lint already (and would have failed the fixture); run it once more
    here so a lint regression is reported as such, not as a packaging failure."""
    assert "cfn-lint: no errors, no warnings" in packaged.log
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    proc = subprocess.run([str(cfn_lint), "--ignore-checks", "W3005", "--",
                           str(packaged.out / "cloudformation-template-update-stack.json")],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ops_email_subscribes_only_when_set(packaged: Packaged) -> None:
    """opsEmail (stack parameter OpsEmail, default '') subscribes that address to the ops
    topic by email; without it there is no subscription (the topic and alarms still exist)."""
    tpl = packaged.template
    assert tpl.doc["Parameters"]["OpsEmail"]["Default"] == ""
    subscriptions = list(tpl.of_type("AWS::SNS::Subscription"))
    assert subscriptions, "no SNS subscription in the template"
    off = tpl.with_parameters(OpsEmail="")
    assert not any(off.resource_included(k) for k in subscriptions)
    on = tpl.with_parameters(OpsEmail="ops@example.com")
    included = [on.props(k) for k in subscriptions if on.resource_included(k)]
    assert included == [{"TopicArn": ops_topic_arn(), "Protocol": "email", "Endpoint": "ops@example.com"}]
    assert off.props("OpsTopic") == on.props("OpsTopic")


def test_kms_switch_adds_only_the_key(packaged: Packaged) -> None:
    """The key exists only with kms=true; every KMS grant points at that key."""
    off = packaged.template.with_parameters(KmsEncryption="false")
    on = packaged.template.with_parameters(KmsEncryption="true")
    assert not off.resource_included("DataKey") and on.resource_included("DataKey")
    assert on.props("DataKey")["EnableKeyRotation"] is True
    for role in off.of_type("AWS::IAM::Role"):
        assert not any(a.startswith("kms:") for a, _ in grants(role_statements(off, role)))


def test_function_zips_hold_only_lambda_code(packaged: Packaged) -> None:
    forbidden = ("vidsift/local/", "vidsift/cli", "vidsift/demo", "vidsift/report/", "vidsift/testing/",
                 "vidsift/deploy/", "__pycache__", "tests/", "node_modules/", "layers/", ".venv/", "sagemaker/",
                 "edge/", ".serverless/")
    for stage in contract.FUNCTIONS:
        names = zipfile.ZipFile(packaged.out / f"{stage}.zip").namelist()
        handler_file = contract.function(stage)["handler"].rsplit(".", 1)[0] + ".py"
        assert handler_file in names and "vidsift/contract.json" in names and "vidsift/stages/runtime.py" in names
        assert any(n.startswith("vidsift/core/") for n in names)
        leaked = [n for n in names if any(f in n for f in forbidden) or n.endswith(".pyc")]
        assert leaked == [], f"{stage}.zip ships local-only files: {leaked}"


def _layertool() -> Any:
    spec = importlib.util.spec_from_file_location("layertool", ROOT / "layers" / "layertool.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_functions_with_layers_fit_lambdas_unzipped_limit(packaged: Packaged) -> None:
    tool = _layertool()
    zips = sorted((ROOT / "layers" / "build").glob("*.zip"))
    lines = tool.report(zips, packaged.out)
    per_function = [line for line in lines if line.strip().startswith("function")]
    # The contract's functions (the sweeper among them) and expire_visitors (visitors=true only).
    assert len(per_function) == len(contract.FUNCTIONS) + 1, lines
    assert all(line.endswith(" OK") for line in per_function), "\n".join(lines)


# -------------------------------------------------------------------- the checks can fail


def _mutated(packaged: Packaged, mutate: Callable[[dict[str, Any]], None]) -> Template:
    doc = copy.deepcopy(packaged.template.doc)
    mutate(doc)
    return Template(doc, {"KmsEncryption": "false", "ParquetOutput": "false"})


def _statements(doc: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return doc["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def _swap_columns(doc: dict[str, Any]) -> None:
    cols = doc["Resources"]["PeopleTable"]["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
    cols[0], cols[1] = cols[1], cols[0]


def _drop_tls_deny(doc: dict[str, Any]) -> None:
    doc["Resources"]["FramesBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"] = []


def _drop_notification(doc: dict[str, Any]) -> None:
    doc["Resources"]["RawBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"].pop()


def _raw_configs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["Resources"]["RawBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]


def _is_snapshot_config(qc: dict[str, Any]) -> bool:
    return {"Name": "prefix", "Value": C["snapshot_prefix"]} in qc["Filter"]["S3Key"]["Rules"]


def _drop_snapshot_notification(doc: dict[str, Any]) -> None:
    configs = _raw_configs(doc)
    configs[:] = [qc for qc in configs if not _is_snapshot_config(qc)]


def _overlapping_notification(doc: dict[str, Any]) -> None:
    """The snapshot lane widened to every object under the prefix: it now overlaps .mp4 there."""
    for qc in _raw_configs(doc):
        if _is_snapshot_config(qc):
            qc["Filter"]["S3Key"]["Rules"] = [{"Name": "prefix", "Value": C["snapshot_prefix"]}]


def _frames_only_detect_queue(doc: dict[str, Any]) -> None:
    st = doc["Resources"]["DetectPeopleQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    st["Condition"]["ArnEquals"]["aws:SourceArn"] = st["Condition"]["ArnEquals"]["aws:SourceArn"][0]


def _esm(doc: dict[str, Any], stage_queue: str) -> dict[str, Any]:
    return next(r for r in doc["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
                and r["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] == stage_queue)


def _fn(doc: dict[str, Any], logical: str) -> dict[str, Any]:
    return doc["Resources"][logical]["Properties"]


DRIFTS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "extra action": ("iam", lambda d: _statements(d, "SplitFramesRole").append(
        {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": {"Fn::Sub": "${RawBucket.Arn}/*"}})),
    "star resource": ("iam", lambda d: _statements(d, "DetectPeopleRole").append(
        {"Effect": "Allow", "Action": "firehose:PutRecordBatch", "Resource": "*"})),
    "other function's queue": ("iam", lambda d: _statements(d, "AnalyzeFacesRole")[1].update(
        {"Resource": {"Fn::GetAtt": ["SplitFramesQueue", "Arn"]}})),
    "public bucket": ("buckets", lambda d: d["Resources"]["PeopleBucket"]["Properties"]
                      ["PublicAccessBlockConfiguration"].update({"RestrictPublicBuckets": False})),
    "no TLS deny": ("buckets", _drop_tls_deny),
    "unencrypted queue": ("queues", lambda d: d["Resources"]["DetectPeopleDlq"]["Properties"].pop(
        "SqsManagedSseEnabled")),
    "maxReceiveCount": ("queues", lambda d: d["Resources"]["AnalyzeFacesQueue"]["Properties"]["RedrivePolicy"]
                        .update({"maxReceiveCount": 99})),
    "visibility timeout": ("queues", lambda d: d["Resources"]["SplitFramesQueue"]["Properties"].update(
        {"VisibilityTimeout": 900})),
    "missing suffix": ("notifications", _drop_notification),
    "no snapshot lane": ("notifications", _drop_snapshot_notification),
    "overlapping filters": ("notifications", _overlapping_notification),
    "snapshot source not allowed": ("queues", _frames_only_detect_queue),
    "snapshots not waited for": ("queues", lambda d: d["Resources"]["RawBucket"].update(
        {"DependsOn": ["SplitFramesQueuePolicy"]})),
    "reads every raw object": ("iam", lambda d: _statements(d, "DetectPeopleRole").append(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "${RawBucket.Arn}/*"}})),
    "batch size": ("event_sources", lambda d: _esm(d, "DetectPeopleQueue")["Properties"].update({"BatchSize": 10})),
    "no partial failures": ("event_sources", lambda d: _esm(d, "AnalyzeFacesQueue")["Properties"].pop(
        "FunctionResponseTypes")),
    "env value": ("functions", lambda d: _fn(d, "AnalyzeUnderscorefacesLambdaFunction")["Environment"]
                  ["Variables"].update({"PEOPLE_BUCKET": "somebody-elses-bucket"})),
    "env key": ("functions", lambda d: _fn(d, "SplitUnderscoreframesLambdaFunction")["Environment"]
                ["Variables"].pop("FACE_MIN_SIZE")),
    "memory": ("functions", lambda d: _fn(d, "DetectUnderscorepeopleLambdaFunction").update({"MemorySize": 128})),
    "bad setting": ("functions", lambda d: _fn(d, "SplitUnderscoreframesLambdaFunction")["Environment"]
                    ["Variables"].update({"SAMPLE_MODE": "sometimes"})),
    "firehose prefix": ("firehose", lambda d: d["Resources"]["FacesDeliveryStream"]["Properties"]
                        ["ExtendedS3DestinationConfiguration"].update({"Prefix": "faces/"})),
    "column order": ("glue", _swap_columns),
    "column type": ("glue", lambda d: d["Resources"]["FacesTable"]["Properties"]["TableInput"]
                    ["StorageDescriptor"]["Columns"][-1].update({"Type": "timestamp"})),
    "ttl attribute": ("idempotency_table", lambda d: d["Resources"]["IdempotencyTable"]["Properties"]
                      ["TimeToLiveSpecification"].update({"AttributeName": "ttl"})),
    "topic unencrypted": ("alerts", lambda d: d["Resources"]["AlertTopic"]["Properties"].pop("KmsMasterKeyId")),
    "collection renamed": ("alerts", lambda d: d["Resources"]["KnownFacesCollection"]["Properties"].update(
        {"CollectionId": "faces"})),
    "publish anywhere": ("iam", lambda d: _statements(d, "AnalyzeFacesRole").append(
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"})),
    "alarm to nobody": ("alarms", lambda d: d["Resources"]["DetectPeopleDlqAlarm"]["Properties"].update(
        {"AlarmActions": []})),
    "stream without alarm": ("alarms", lambda d: d["Resources"].pop("FacesDeliveryAlarm")),
    "alarm on another queue": ("alarms", lambda d: d["Resources"]["SplitFramesErrorsAlarm"]["Properties"].update(
        {"Dimensions": [{"Name": "FunctionName", "Value": "somebody-elses-function"}]})),
    "results unencrypted": ("athena", lambda d: d["Resources"]["AthenaWorkGroup"]["Properties"]
                            ["WorkGroupConfiguration"]["ResultConfiguration"].pop("EncryptionConfiguration")),
}


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_checks_catch_drift(packaged: Packaged, drift: str) -> None:
    check, mutate = DRIFTS[drift]
    baseline = packaged.template.with_parameters(KmsEncryption="false", ParquetOutput="false")
    assert CHECKS[check](baseline) == []
    assert CHECKS[check](_mutated(packaged, mutate)) != [], f"{check} did not notice: {drift}"


# -------------------------------------------------------------------- layers


def test_layer_requirements_are_exact_pins_of_lambda_wheels() -> None:
    tool = _layertool()
    reqs = sorted((ROOT / "layers").glob("*/requirements.txt"))
    assert {r.parent.name for r in reqs} == {"media", "powertools", "tracking"}
    for req in reqs:
        assert tool.read_pins(req), req  # raises on anything but name==version
    script = (ROOT / "layers" / "build.sh").read_text()
    for flag in ("--platform manylinux_2_28_x86_64", "--only-binary=:all:", "--python-version 3.12",
                 "--implementation cp", "--target"):
        assert flag in script, f"layers/build.sh lost {flag}"


def test_check_pins_refuses_unpinned_or_missing(tmp_path: Path) -> None:
    tool = _layertool()
    req = tmp_path / "requirements.txt"
    req.write_text("numpy==2.4.6\nPillow==13.0.0\n")
    for name, version in (("numpy", "2.4.6"), ("pillow", "13.0.0"), ("typing_extensions", "4.16.0")):
        meta = tmp_path / "site" / f"{name}-{version}.dist-info" / "METADATA"
        meta.parent.mkdir(parents=True)
        meta.write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    assert tool.check_pins(req, tmp_path / "site") == ["installed but not pinned: typing-extensions==4.16.0"]
    req.write_text("numpy>=2\n")
    with pytest.raises(SystemExit):
        tool.read_pins(req)


def test_layer_zip_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    tool = _layertool()
    src = tmp_path / "layer"
    for rel in ("python/b/mod.py", "python/a.py", "python/b/lib.so"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(rel.encode() * 100)
    (src / "python/b/lib.so").chmod(0o755)
    tool.reproducible_zip(src, tmp_path / "one.zip")
    for i, path in enumerate(sorted(src.rglob("*.py"))):
        os.utime(path, (1_000_000 + i, 2_000_000 + i))  # other mtimes, other order of creation
    tool.reproducible_zip(src, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["python/a.py", "python/b/lib.so", "python/b/mod.py"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert (infos[1].external_attr >> 16) & 0o777 == 0o755


def _python312() -> str | None:
    import glob
    import shutil

    candidates = [shutil.which("python3.12") or ""]
    candidates += sorted(glob.glob(os.path.join(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")),
                                                "versions", "3.12*", "bin", "python3.12")))
    for c in candidates:
        if c and subprocess.run([c, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"],
                                capture_output=True, check=False).returncode == 0:
            return c
    return None


def _layer_dir(name: str, tmp_path: Path) -> str:
    """A layer's python/ folder, as Lambda mounts it under /opt (extracted if need be)."""
    folder = ROOT / "layers" / "build" / name
    if not (folder / "python").is_dir():
        zipfile.ZipFile(ROOT / "layers" / "build" / f"{name}.zip").extractall(tmp_path / name)
        folder = tmp_path / name
    return str(folder / "python")


def _lambda_runtime_boto3(tmp_path: Path) -> str:
    """Lambda's runtime brings boto3 (after the layers on sys.path); stand in with this
    venv's pure-Python copy."""
    runtime = tmp_path / "runtime"
    if not runtime.exists():
        runtime.mkdir()
        import boto3

        site = Path(boto3.__file__).parents[1]
        for name in ("boto3", "botocore", "s3transfer", "dateutil", "urllib3", "six.py"):
            (runtime / name).symlink_to(site / name)
    return str(runtime)


def test_each_function_imports_with_only_its_own_zip_and_layers(packaged: Packaged, tmp_path: Path) -> None:
    """What Lambda does at a cold start, on CPython 3.12: the function's zip plus exactly its
    layers (and the runtime's boto3) must import the handler. Catches a handler that needs
    a package its layers lack, or a module left out of the zip."""
    py312 = _python312()
    if py312 is None:
        pytest.skip("no CPython 3.12 on this machine to load the cp312 wheels with")
    tpl = packaged.template.with_parameters(KmsEncryption="false", ParquetOutput="false")
    layer_names = LAYER_NAMES
    for stage in contract.FUNCTIONS:
        task = tmp_path / stage
        zipfile.ZipFile(packaged.out / f"{stage}.zip").extractall(task)
        fid = function_id(tpl, stage)
        layers = [_layer_dir(layer_names[ref["Ref"]], tmp_path) for ref in tpl.resources[fid]["Properties"]["Layers"]]
        env = {k: str(v) for k, v in tpl.props(fid)["Environment"]["Variables"].items()}
        env |= {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AWS_REGION": REGION,
                "AWS_LAMBDA_FUNCTION_NAME": function_name(stage),
                "PYTHONPATH": os.pathsep.join([str(task), *layers, _lambda_runtime_boto3(tmp_path)])}
        module = contract.function(stage)["handler"].rsplit(".", 1)[0].replace("/", ".")
        code = f"import importlib; m = importlib.import_module({module!r}); assert callable(m.handler); print('ok')"
        proc = subprocess.run([py312, "-s", "-c", code], cwd=task, env=env, capture_output=True, text=True,
                              check=False, timeout=120)
        assert proc.returncode == 0 and "ok" in proc.stdout, f"{stage}:\n{proc.stdout}{proc.stderr}"


def _run_py312(py312: str, code: str, paths: list[str], tmp_path: Path) -> None:
    """Run ``code`` on CPython 3.12 with only ``paths`` importable; it must print ok."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(paths), "HOME": str(tmp_path)}
    proc = subprocess.run([py312, "-s", "-c", code], env=env, capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stdout + proc.stderr


def test_layers_import_on_cpython_312(packaged: Packaged, tmp_path: Path) -> None:
    """The layers' wheels are Lambda's (cp312, x86_64, glibc <= 2.34): with a CPython 3.12
    on this Linux they must import and work, from their /opt/python-style folders."""
    py312 = _python312()
    if py312 is None:
        pytest.skip("no CPython 3.12 on this machine to load the cp312 wheels with")
    paths = [_layer_dir(name, tmp_path) for name in ("media", "powertools")]
    paths.append(_lambda_runtime_boto3(tmp_path))
    code = (
        "import io, av, numpy, PIL.Image\n"
        "from aws_lambda_powertools import Logger\n"
        "from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType\n"
        "from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer\n"
        "buf = io.BytesIO()\n"
        "with av.open(buf, 'w', format='mp4') as out:\n"
        "    s = out.add_stream('mpeg4', rate=5); s.width = 64; s.height = 48; s.pix_fmt = 'yuv420p'\n"
        "    for i in range(5):\n"
        "        img = numpy.full((48, 64, 3), i * 40, dtype=numpy.uint8)\n"
        "        for p in s.encode(av.VideoFrame.from_ndarray(img, format='rgb24')): out.mux(p)\n"
        "    for p in s.encode(): out.mux(p)\n"
        "buf.seek(0)\n"
        "frames = [f.to_image() for f in av.open(buf).decode(video=0)]\n"
        "assert len(frames) == 5 and isinstance(frames[0], PIL.Image.Image)\n"
        "print('ok', av.__version__, numpy.__version__, PIL.__version__)\n"
    )
    _run_py312(py312, code, paths, tmp_path)


def test_tracking_layer_tracks_on_cpython_312(packaged: Packaged, tmp_path: Path) -> None:
    """The tracking layer (norfair installed without its declared numpy<2, on the NumPy 2
    and SciPy pins) follows a walking person on CPython 3.12, with no OpenCV or matplotlib
    anywhere on the path (the media layer is not track_people's)."""
    py312 = _python312()
    if py312 is None:
        pytest.skip("no CPython 3.12 on this machine to load the cp312 wheels with")
    paths = [str(ROOT), _layer_dir("tracking", tmp_path), _layer_dir("powertools", tmp_path),
             _lambda_runtime_boto3(tmp_path)]
    code = (
        "import sys\n"
        "from vidsift.core.detection import Box\n"
        "from vidsift.core.tracking import FramePeople, track_segment\n"
        "frames = [FramePeople(i, float(i), (Box(0.05 + 0.08 * i, 0.3, 0.1, 0.4, 0.9),)) for i in range(10)]\n"
        "tracks = track_segment(frames)\n"
        "assert [len(t.points) for t in tracks] == [10], tracks\n"
        "assert 'cv2' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "print('ok')\n"
    )
    _run_py312(py312, code, paths, tmp_path)


def test_switching_parquet_on_never_mixes_formats_under_one_location(packaged: Packaged) -> None:
    """Switching parquet on an existing stack (issue 26, item 10): the Parquet tables read, and
    Firehose writes, under the contract's parquet_prefix, a location the JSON rows written
    before the switch are never under (and the other way round), so Athena never meets a JSON
    object in a Parquet table's location."""
    where: dict[str, dict[str, tuple[str, str]]] = {}
    for parquet in ("false", "true"):
        tpl = packaged.template.with_parameters(KmsEncryption="false", ParquetOutput=parquet)
        tables = {tpl.props(k)["TableInput"]["Name"]: tpl.props(k) for k in tpl.of_type("AWS::Glue::Table")}
        where[parquet] = {}
        for table in contract.TABLES:
            sid = find_by(tpl, "AWS::KinesisFirehose::DeliveryStream", "DeliveryStreamName", NAMES.stream(table))
            prefix = tpl.props(sid)["ExtendedS3DestinationConfiguration"]["Prefix"]
            location = tables[table]["TableInput"]["StorageDescriptor"]["Location"]
            assert f"s3://{NAMES.bucket('analytics')}/{static_prefix(prefix)}".startswith(location)
            where[parquet][table] = (prefix, location)
    for table in contract.TABLES:
        json_location, parquet_location = where["false"][table][1], where["true"][table][1]
        assert not json_location.startswith(parquet_location) and not parquet_location.startswith(json_location)
