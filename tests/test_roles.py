"""Every function works under its own role, and its role allows what it does and no more.

One end-to-end workload runs on the local stack with every AWS call recorded per function
(vidsift.testing.calls: botocore's event hooks on vidsift.aws's clients, the stage set by the
local dispatcher): a video with people sampled in segments through all three stages, a known
face found, person and face alerts with presigned links, an edge snapshot, a deleted video, a
deleted frame and bad inputs whose errors/ records are written, a Rekognition failure retried. Each call becomes the IAM
requests AWS would authorise (implied ones too: CopyObject's source, Rekognition reading the
S3Object as the caller, presigned links, 404s needing ListBucket, SSE-KMS), which are checked
against the function's role in the compiled template (default and kms=true) with moto's IAM
evaluator, in both directions: no request the role denies, and no grant that no request uses
unless UNEXERCISED names it with the reason.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from conftest_stack import ACCOUNT, TEMPLATE_FILE, Template, as_list, package_stack, role_statements, shared_folder

from vidsift import aws, contract
from vidsift.core import completion, layout, matching
from vidsift.core.detection import Detection
from vidsift.core.keys import frame_key
from vidsift.core.records import FrameMeta
from vidsift.local.dispatcher import Dispatcher, _acting_as, invoke
from vidsift.local.runner import upload, upload_key
from vidsift.local.stack import LocalStack
from vidsift.settings import Settings
from vidsift.stages import barrier, counting, sweeping, tracking
from vidsift.testing import calls
from vidsift.testing.localcheck import alerts_received, count_sampled, error_records, put_snapshot
from vidsift.testing.samples import Segment, jpeg, make_video, photo

ROOT = Path(__file__).resolve().parents[1]
NAMES = calls.Names(local_prefix=contract.local_names().prefix,
                    stage_prefix=contract.ResourceNames(stage="dev", account=ACCOUNT).prefix, account=ACCOUNT)
VARIANTS = {"default": [], "kms": ['--param=kms=true']}

#: Every function with a role: the queues' stages, recount and the scheduled sweeper.
SWEEPER = contract.SWEEPER
FUNCTIONS = list(contract.FUNCTIONS)

#: Grants no recorded call uses, each with the reason: (stage, action, resource glob) -> why.
UNEXERCISED: dict[tuple[str, str, str], str] = {}
for _stage in FUNCTIONS:
    UNEXERCISED |= {
        (_stage, "logs:CreateLogStream", "arn:aws:logs:*:log-group:/aws/lambda/*"):
            "the Lambda runtime writes the function's logs from stdout, not botocore",
        (_stage, "logs:PutLogEvents", "arn:aws:logs:*:log-group:/aws/lambda/*"):
            "the Lambda runtime writes the function's logs from stdout, not botocore",
    }
for _stage in contract.STAGES:
    UNEXERCISED |= {
        (_stage, "sqs:GetQueueAttributes", "arn:aws:sqs:*"):
            "Lambda reads the queue's attributes when the event source mapping is created (deploy time); "
            "the local dispatcher has no such step",
        (_stage, "dynamodb:GetItem", "arn:aws:dynamodb:*:table/vidsift-dev-idempotency"):
            "Powertools reads an idempotency record only when a conditional PutItem fails without returning "
            "the item (ReturnValuesOnConditionCheckFailure); no replay in the workload",
    }

UNEXERCISED |= {("recount", action, "arn:aws:logs:*:log-group:/aws/lambda/*"):
                "the Lambda runtime writes the function's logs from stdout, not botocore"
                for action in ("logs:CreateLogStream", "logs:PutLogEvents")}
UNEXERCISED[("detect_people", "dynamodb:DeleteItem", "arn:aws:dynamodb:*:table/vidsift-dev-idempotency")] = (
    "Powertools deletes the in-progress record when the work inside once() fails (CopyObject, SNS, Firehose); "
    "no fault is injected there, and a bad frame is found before once()")
UNEXERCISED[("track_people", "dynamodb:DeleteItem", "arn:aws:dynamodb:*:table/vidsift-dev-idempotency")] = (
    "Powertools deletes the in-progress record when the tracking work inside once() fails (S3, Firehose, "
    "SQS); no fault is injected there")
UNEXERCISED[("split_frames", "sqs:SendMessage", "arn:aws:sqs:*:vidsift-dev-track-people")] = (
    "split_frames tells track_people a video is ready only when detection settled every frame before the "
    "segment's frame count was recorded (a retried split); in the workload detection always ends later, and "
    "detect_people sends the message (tests/test_tracking_pipeline.py covers both orders)")
UNEXERCISED[("split_frames", "dynamodb:GetItem", "arn:aws:dynamodb:*:table/vidsift-dev-tracking")] = (
    "split_frames reads a segment's progress only when its update's answer (UPDATED_NEW) leaves out an "
    "attribute that did not change: when detection settled the segment's frames before split_frames reported "
    "them (a retried split), which the workload does not do (tests/test_tracking_pipeline.py does)")
# detect_people asks the store whether a frame is done before its batched endpoint call (runtime.done).
del UNEXERCISED[("detect_people", "dynamodb:GetItem", "arn:aws:dynamodb:*:table/vidsift-dev-idempotency")]

#: What the check finds in the template today and is reported, not yet fixed (serverless.yml is
#: someone else's to change): (variant, the finding's start) -> what is wrong. Each makes its
#: test an expected failure naming it; a finding no longer found fails, so it is removed here.
DATA_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/DataKey"
SQS_VIA = "{'kms:ViaService': 'sqs.us-east-1.amazonaws.com'}"
KNOWN_DENIALS: dict[tuple[str, str], str] = {}
KNOWN_UNUSED: dict[tuple[str, str], str] = {}


# -------------------------------------------------------------------- the templates


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    """The stack packaged offline as deployed, by default and with --param=kms=true (the run's
    shared packagings: conftest_stack.package_stack)."""
    shared = shared_folder(tmp_path_factory)
    return {name: Template.load(package_stack(shared, *extra)[0] / TEMPLATE_FILE) for name, extra in VARIANTS.items()}


def function_roles(tpl: Template) -> dict[str, str]:
    """stage -> the logical id of the role its Lambda function runs under."""
    out = {}
    for logical_id in tpl.of_type("AWS::Lambda::Function"):
        props = tpl.props(logical_id)
        stage = props["FunctionName"].removeprefix(f"{NAMES.stage_prefix}-")
        out[stage] = props["Role"].rsplit("/", 1)[1]
    return out


def role(tpl: Template, role_id: str) -> calls.Role:
    props = tpl.props(role_id)
    assert not props.get("ManagedPolicyArns"), f"{role_id}: managed policies cannot be evaluated offline"
    return calls.Role(role_statements(tpl, role_id))


def kms_key_arn(tpl: Template, key: str | None) -> str | None:
    """A customer managed key's ARN; None for none or an AWS managed one (alias/aws/...)."""
    if not key or key.startswith("alias/aws/"):
        return None
    if key.startswith("<") and key.endswith(">"):  # Ref to an AWS::KMS::Key: its id
        return tpl.get_att(key[1:-1], "Arn")
    if key.startswith("arn:aws:kms:"):
        return key
    raise NotImplementedError(f"KMS key {key!r}")


def stack_keys(tpl: Template) -> calls.Keys:
    """Which customer managed key encrypts each bucket's new objects, each queue and each topic."""
    buckets: dict[str, str | None] = {}
    for logical_id in tpl.of_type("AWS::S3::Bucket"):
        props = tpl.props(logical_id)
        rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        default = rules[0]["ServerSideEncryptionByDefault"] if rules else {"SSEAlgorithm": "AES256"}
        if default["SSEAlgorithm"] == "aws:kms":
            assert default.get("KMSMasterKeyID"), f"{logical_id}: the AWS managed S3 key is not modelled"
        buckets[props.get("BucketName", logical_id)] = kms_key_arn(tpl, default.get("KMSMasterKeyID"))
    queues = {tpl.props(q)["QueueName"]: kms_key_arn(tpl, tpl.props(q).get("KmsMasterKeyId"))
              for q in tpl.of_type("AWS::SQS::Queue")}
    topics = {tpl.props(t).get("TopicName", t): kms_key_arn(tpl, tpl.props(t).get("KmsMasterKeyId"))
              for t in tpl.of_type("AWS::SNS::Topic")}
    return calls.Keys(buckets, queues, topics)


# -------------------------------------------------------------------- the workload




def put_frame(stack: LocalStack, bucket_role: str, video: str, index: int, body: bytes, meta: bool = True,
              camera: str = "porch") -> str:
    """A frame as split_frames writes it; in the people bucket under the prefix that notifies
    alert_faces (where detect_people copies the edge's snapshots)."""
    m = FrameMeta(video_id=video, source_bucket="raw", source_key=f"uploads/{video}.mp4", camera_id=camera,
                  frame_index=index, frame_time_s=float(index), captured_at="2026-01-01T00:00:03.000Z")
    key = frame_key(video, index)
    if bucket_role == "people":
        key = f"{contract.stage('alert_faces')['source_prefix']}{key}"
    aws.client("s3").put_object(Bucket=stack.names.bucket(bucket_role), Key=key, Body=body,
                                Metadata=m.to_s3() if meta else {})
    return key


@dataclass
class Workload:
    recorder: calls.Recorder
    stack: LocalStack
    alerts: list[dict[str, object]]


RULES = [{"name": "anyone", "when": "person"}, {"name": "family", "when": "face_match"},
         {"name": "stranger", "when": "face_unknown"}]


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    d = tmp_path_factory.mktemp("roles")
    people = make_video(d / "people.mp4", [Segment("coffee", 2), Segment("astronaut", 2), Segment("chelsea", 2)],
                        fps=10, width=320, height=240)
    text = d / "readme.mp4"
    text.write_text("definitely not a video\n" * 20)
    gone = make_video(d / "gone.mp4", [Segment("coffee", 1)], fps=10, width=160, height=120)
    env = {"ALERT_RULES": json.dumps(RULES), "SEGMENT_SECONDS": "2"}
    saved = {k: os.environ.get(k) for k in env}
    with LocalStack() as stack:
        # The local stack sets SPLIT_QUEUE_URL as serverless.yml does: without it split_frames would
        # look its own queue up with GetQueueUrl, a call no role needs in AWS.
        assert os.environ["SPLIT_QUEUE_URL"] == stack.queue_urls["split_frames"]
        os.environ.update(env)
        try:
            assert Dispatcher(stack).run_until_idle(timeout_s=60)  # S3's test events, not recorded
            collection = matching.collection_name(stack.names)
            aws.index_faces(collection, jpeg(photo("astronaut"), 95), matching.encode_name("Eileen Collins"))
            # Set up first (the S3 events wait in the queues), then only the functions run, recorded.
            s3, raw = aws.client("s3"), stack.names.bucket("raw")
            upload(stack, people, upload_key(people, 0), "porch", "2026-01-01T00:00:00Z")  # 3 segments
            upload(stack, text, upload_key(text, 1), "porch", None)  # errors/split_frames/
            upload(stack, gone, upload_key(gone, 2), "porch", None)
            s3.delete_object(Bucket=raw, Key=upload_key(gone, 2))  # HeadObject answers 404
            put_frame(stack, "frames", "no-meta", 0, jpeg(photo("coffee")), meta=False)  # errors/detect_people/
            # A frame recorded already, deleted since, its event delivered again: detect_people
            # reads it (HeadObject) to compare with the record, and 404 rather than 403 needs ListBucket.
            gone_frame = put_frame(stack, "frames", "deleted", 0, jpeg(photo("coffee")))
            gone_meta = FrameMeta.from_s3(s3.head_object(Bucket=stack.names.bucket("frames"),
                                                         Key=gone_frame)["Metadata"])
            tracking.record_detections(Settings.from_env(), [(gone_meta, Detection(model="ssdlite", boxes=()))])
            s3.delete_object(Bucket=stack.names.bucket("frames"), Key=gone_frame)
            grace = np.asarray(Image.fromarray(photo("grace_hopper")).resize((437, 512)))
            pair = np.concatenate([photo("astronaut")[:, ::-1], grace], axis=1)  # mirrored: not the indexed photo
            # alert_faces' frames (the snapshots' prefix) on a camera of their own: the video's face
            # alerts (camera porch) then come from analyze_faces, not cooled down by these.
            put_frame(stack, "people", "known-faces", 3, jpeg(pair), camera="door")  # SearchFacesByImage, alerts
            key = put_frame(stack, "people", "deleted", 0, jpeg(photo("astronaut")), camera="door")
            s3.delete_object(Bucket=stack.names.bucket("people"), Key=key)  # errors/alert_faces/
            # analyze_faces: a group message naming face work that is not there (GetObject 404,
            # with ListBucket) and one without its work key: errors/analyze_faces/.
            aws.send_messages(stack.queue_urls["analyze_faces"], [
                completion.FacesMessage("no-such-video", "tracks/no-such-video/g000.json").to_json(),
                {completion.FACES_MESSAGE: {"video_id": "no-work-key"}}])
            put_snapshot(stack, jpeg(photo("astronaut")), camera_id="gate", recorded_at=datetime.now(UTC))
            # Two frames of a person too far away for a findable face, as split_frames would
            # have written and counted them: their visit's row comes from track_people itself.
            canvas = np.full((720, 480, 3), 90, dtype=np.uint8)  # the person's box: 24 % of the height
            canvas[540:710, 155:325] = np.asarray(Image.fromarray(photo("astronaut")).resize((170, 170)))
            for i in range(2):
                put_frame(stack, "frames", "far-away", i, jpeg(canvas))
                count_sampled(stack, "far-away", i)
            # A message track_people cannot read: errors/track_people/.
            aws.send_messages(stack.queue_urls["track_people"], [{"not": "a tracking message"}])
            # DetectFaces fails once inside once() in each face stage: Powertools deletes the record,
            # the retry works. Aimed by key: both stages call Rekognition at once.
            snapshots = contract.stage("alert_faces")["source_prefix"]
            stack.rekognition.fail_next(1, "InvalidS3ObjectException", key_filter=lambda k: k.startswith(snapshots))
            stack.rekognition.fail_next(1, "InvalidS3ObjectException",
                                        key_filter=lambda k: not k.startswith(snapshots))
            # Two videos for the sweeper: one whose frame's message is lost (given up, tracked),
            # one whose segment was never sampled (failed, errors/sweep_stalled/).
            table, queue = stack.names.tracking_table, stack.queue_urls["track_people"]
            barrier.begin_video(table, "stalled", segments=1, per=0, source="s3://raw/uploads/s.mp4", version="")
            barrier.report_sampled(table, queue, "stalled", 0, {"expected": 1, "first": 0, "last": 0, "start": 0.0})
            lost = put_frame(stack, "frames", "stalled", 0, jpeg(photo("coffee")))
            _drop_messages(stack.queue_urls["detect_people"], lost)
            barrier.begin_video(table, "unsampled", segments=2, per=10, source="s3://raw/uploads/u.mp4", version="v")
            recorder = calls.Recorder()
            with recorder.recording():
                assert Dispatcher(stack).run_until_idle(timeout_s=600)
                with _acting_as(SWEEPER, "handler"):
                    config = sweeping.SweepConfig.from_settings(Settings.from_env())
                    swept = sweeping.sweep(config, now=time.time() + config.stall_after_s + 1)
                assert (swept.finished, swept.failed) == (["stalled"], ["unsampled"])
                assert Dispatcher(stack).run_until_idle(timeout_s=60)
                # Lines and zones: the videos above were tracked before any camera layout was
                # stored (track_people's GetObject answers 404, which needs ListBucket); with one
                # stored, a video's crossings and zone_visits objects are written.
                counting.put_layout(stack.names.bucket("analytics"), layout.loads(
                    "cameras: {porch: {lines: [{name: door, points: [[0.5, 0.1], [0.5, 0.9]], in_from: [0.1, 0.5]}],"
                    " zones: [{name: mat, polygon: [[0.2, 0.6], [0.8, 0.6], [0.8, 1.0], [0.2, 1.0]]}]}}"))
                for i in range(2):
                    put_frame(stack, "frames", "far-away-counted", i, jpeg(canvas))
                    count_sampled(stack, "far-away-counted", i)
                assert Dispatcher(stack).run_until_idle(timeout_s=600)
                # recount (invoked directly, no queue): the stack's videos again, with the stored layout
                # (since yesterday: a run crossing midnight UTC still finds them).
                since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
                assert invoke(stack.names.prefix, "recount", {"since": since})["videos"] >= 1
            yield Workload(recorder, stack, alerts_received(stack))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _drop_messages(url: str, key: str) -> None:
    """Delete the S3 event of ``key`` from a queue (a message lost), leaving the others queued."""
    from vidsift.core.events import parse_s3_message

    sqs, held = aws.client("sqs"), []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages"):
        held += got
    for m in held:
        if any(r.key == key for r in parse_s3_message(m["Body"])):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        else:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)


def recorded_requests(w: Workload, tpl: Template) -> dict[str, dict[calls.Request, list[calls.Call]]]:
    keys = stack_keys(tpl)
    out: dict[str, dict[calls.Request, list[calls.Call]]] = {s: {} for s in FUNCTIONS}
    for call in w.recorder.calls:
        for req in calls.requests(call, NAMES, keys):
            out[call.stage].setdefault(req, []).append(call)
    return out


# -------------------------------------------------------------------- the checks


def check_roles(w: Workload, tpl: Template) -> tuple[list[str], list[str], list[str]]:
    """(denials, unused grants, stale UNEXERCISED entries) over every stage."""
    reqs = recorded_requests(w, tpl)
    roles = function_roles(tpl)
    denied, unused, stale = [], [], []
    for stage in FUNCTIONS:
        r = role(tpl, roles[stage])
        denied += [f"{stage}: {d}" for d in calls.denials(r, reqs[stage])]
        u, s = calls.unused_grants(r, list(reqs[stage]), stage, UNEXERCISED)
        unused += u
        stale += s
    return denied, unused, stale


def test_the_workload_reaches_every_path_it_is_meant_to(workload: Workload) -> None:
    ops = {(c.stage, c.service, c.operation, c.presign) for c in workload.recorder.calls}
    for want in [("split_frames", "sqs", "SendMessageBatch", False), ("split_frames", "s3", "ListObjectsV2", False),
                 ("detect_people", "s3", "CopyObject", False), ("detect_people", "sns", "Publish", False),
                 ("detect_people", "s3", "GetObject", True), ("detect_people", "sagemaker-runtime", "InvokeEndpoint",
                                                              False),
                 ("analyze_faces", "rekognition", "DetectFaces", False),
                 ("analyze_faces", "rekognition", "SearchFacesByImage", False),
                 ("analyze_faces", "s3", "GetObject", True), ("analyze_faces", "firehose", "PutRecordBatch", False),
                 ("alert_faces", "rekognition", "DetectFaces", False),
                 ("alert_faces", "rekognition", "SearchFacesByImage", False), ("alert_faces", "sns", "Publish", False),
                 ("alert_faces", "s3", "GetObject", True),
                 ("detect_people", "dynamodb", "UpdateItem", False),
                 ("detect_people", "sqs", "SendMessageBatch", False),
                 ("track_people", "dynamodb", "Query", False), ("track_people", "firehose", "PutRecordBatch", False),
                 ("track_people", "sqs", "SendMessageBatch", False), ("track_people", "s3", "PutObject", False)]:
        assert want in ops, want
    # The queues' stages and the sweeper record what they could not do under errors/; recount is
    # invoked by a person, who gets its error in the answer.
    for stage in [*contract.STAGES, SWEEPER]:
        assert error_records(workload.stack, stage), f"no errors/{stage}/ record: the bad input did not get there"
    kinds = {(a["kind"], a.get("matched_name")) for a in workload.alerts}
    assert ("person", None) in kinds and any(k == "face_match" for k, _ in kinds), kinds
    link = next(a["frame"]["url"] for a in workload.alerts if a["kind"] == "person")
    with urllib.request.urlopen(link, timeout=10) as resp:
        assert resp.status == 200


def test_no_call_escapes_the_recorder(workload: Workload) -> None:
    """A call through vidsift.aws off the main thread with no stage would go unchecked."""
    assert [u for u in workload.recorder.unattributed if u[0] != "MainThread"] == []
    uploads = [c for c in workload.recorder.calls if c.thread.startswith("put")]
    assert uploads and {c.stage for c in uploads} == {"split_frames"}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_call_maps_to_iam(workload: Workload, templates: dict[str, Template], variant: str) -> None:
    """calls.requests raises on a call it has no mapping for; the counts are printed (-s)."""
    reqs = recorded_requests(workload, templates[variant])
    counts = {stage: len({(r.action, r.resource) for r in reqs[stage]}) for stage in FUNCTIONS}
    actions = {stage: len({r.action for r in reqs[stage]}) for stage in FUNCTIONS}
    print(f"\n{variant}: distinct (action, resource) pairs recorded {counts}, distinct actions {actions}")
    assert all(counts.values())


def expect_only_known(found: list[str], known: dict[tuple[str, str], str], variant: str, what: str) -> None:
    """Fail on any finding not in ``known``, and on a known one no longer found; xfail naming
    the known ones that are still found."""
    mine = {start: why for (v, start), why in known.items() if v == variant}
    new = [f for f in found if not any(f.startswith(start) for start in mine)]
    assert new == [], f"{what}:\n" + "\n".join(new)
    gone = [start for start in mine if not any(f.startswith(start) for f in found)]
    assert gone == [], "fixed in the template: remove from the known findings:\n" + "\n".join(gone)
    if mine:
        pytest.xfail(f"{what} (reported, serverless.yml to fix): " + "; ".join(mine.values()))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_role_allows_every_call_its_function_makes(workload: Workload, templates: dict[str, Template],
                                                        variant: str) -> None:
    denied, _, _ = check_roles(workload, templates[variant])
    expect_only_known(denied, KNOWN_DENIALS, variant, "requests the role does not allow")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_role_grants_nothing_its_function_does_not_use(workload: Workload, templates: dict[str, Template],
                                                            variant: str) -> None:
    _, unused, stale = check_roles(workload, templates[variant])
    assert stale == [], "UNEXERCISED entries that name no unused grant:\n" + "\n".join(stale)
    expect_only_known(unused, KNOWN_UNUSED, variant, "grants no call uses (use them in the workload, remove them, "
                                                     "or name them in UNEXERCISED with the reason)")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_keys_the_calls_need_no_grant_for(templates: dict[str, Template], variant: str) -> None:
    """calls.requests adds KMS requests for SSE-KMS buckets, queues and topics (stack_keys). The
    tables and streams the functions write are encrypted with AWS owned or AWS managed keys,
    which need no grant in the role: if one takes a customer managed key, model it there."""
    tpl = templates[variant]
    for t in tpl.of_type("AWS::DynamoDB::Table"):
        assert "KMSMasterKeyId" not in tpl.props(t).get("SSESpecification", {}), t
    for s in tpl.of_type("AWS::KinesisFirehose::DeliveryStream"):
        sse = tpl.props(s).get("DeliveryStreamEncryptionConfigurationInput", {"KeyType": "AWS_OWNED_CMK"})
        assert sse["KeyType"] == "AWS_OWNED_CMK", s
    keys = stack_keys(tpl)
    used = {k for k in [*keys.buckets.values(), *keys.queues.values(), *keys.topics.values()] if k}
    assert used == ({"arn:aws:kms:us-east-1:123456789012:key/DataKey"} if variant == "kms" else set())


# -------------------------------------------------------------------- the checker catches drift


def drifted(tpl: Template, role_id: str, edit) -> Template:
    """A copy of the template whose role's statements ``edit`` changed (evaluated, then frozen)."""
    doc = copy.deepcopy(tpl.doc)
    statements = edit(copy.deepcopy(role_statements(tpl, role_id)))
    doc["Resources"][role_id]["Properties"]["Policies"] = [{"PolicyName": "drifted",
                                                            "PolicyDocument": {"Version": "2012-10-17",
                                                                               "Statement": statements}}]
    return Template(doc, tpl.parameters)


def without(action: str, resource_suffix: str):
    def edit(statements: list[dict]) -> list[dict]:
        out = [s for s in statements if not (s["Action"] == action and str(s["Resource"]).endswith(resource_suffix))]
        assert len(out) == len(statements) - 1, (action, resource_suffix)
        return out
    return edit


@pytest.mark.parametrize("role_id,action,suffix,expect", [
    ("SplitFramesRole", "s3:PutObject", "-frames/*", "s3:PutObject on arn:aws:s3:::vidsift-dev-123456789012-frames/"),
    # Rekognition reads the frame with the caller's permissions: DetectFaces needs GetObject.
    ("AnalyzeFacesRole", "s3:GetObject", "-people/*", "DetectFaces reads its S3Object as the role"),
    # The presigned link opens only while the signing role may read the copy.
    ("DetectPeopleRole", "s3:GetObject", "-people/*", "presigned GetObject link"),
    ("DetectPeopleRole", "s3:GetObject", "/snapshots/*", "CopyObject source"),
])
def test_a_missing_grant_is_reported(workload: Workload, templates: dict[str, Template], role_id: str, action: str,
                                     suffix: str, expect: str) -> None:
    denied, _, _ = check_roles(workload, drifted(templates["default"], role_id, without(action, suffix)))
    assert denied and any(expect in d for d in denied), "\n".join(denied)


def test_a_missing_kms_grant_is_reported(workload: Workload, templates: dict[str, Template]) -> None:
    tpl = templates["kms"]

    def edit(sts: list[dict]) -> list[dict]:
        return [s for s in sts if not any(a.startswith("kms:") for a in as_list(s["Action"]))]

    denied, _, _ = check_roles(workload, drifted(tpl, "DetectPeopleRole", edit))
    text = "\n".join(denied)
    assert "kms:Decrypt on arn:aws:kms:us-east-1:123456789012:key/DataKey" in text and "CopyObject source" in text
    assert "kms:GenerateDataKey" in text and "CopyObject destination" in text, text


def test_a_kms_grant_through_another_service_is_not_enough(workload: Workload, templates: dict[str, Template]) -> None:
    def edit(sts: list[dict]) -> list[dict]:
        for s in sts:
            if "Condition" in s and "kms:ViaService" in s["Condition"].get("StringEquals", {}):
                s["Condition"]["StringEquals"]["kms:ViaService"] = "sqs.us-east-1.amazonaws.com"
        return sts
    denied, _, _ = check_roles(workload, drifted(templates["kms"], "SplitFramesRole", edit))
    assert any("kms:Decrypt" in d for d in denied) and any("kms:GenerateDataKey" in d for d in denied), denied


def test_an_unused_grant_is_reported(workload: Workload, templates: dict[str, Template]) -> None:
    frames = "arn:aws:s3:::vidsift-dev-123456789012-frames/*"
    extra = {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": frames}
    _, unused, _ = check_roles(workload, drifted(templates["default"], "SplitFramesRole", lambda s: [*s, extra]))
    assert unused == ["split_frames: s3:DeleteObject on arn:aws:s3:::vidsift-dev-123456789012-frames/*"]


def test_a_grant_wider_than_the_calls_is_used_but_a_foreign_one_is_not(workload: Workload,
                                                                       templates: dict[str, Template]) -> None:
    """Wildcard semantics: frames/* is used by any frame's PutObject; another bucket's is not."""
    wide = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::vidsift-dev-123456789012-*/*"}
    foreign = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::vidsift-dev-123456789012-raw/*"}
    _, unused, _ = check_roles(workload, drifted(templates["default"], "SplitFramesRole",
                                                 lambda s: [*s, wide, foreign]))
    assert unused == ["split_frames: s3:PutObject on arn:aws:s3:::vidsift-dev-123456789012-raw/*"]


def test_a_condition_that_no_longer_holds_is_reported(workload: Workload, templates: dict[str, Template]) -> None:
    """Conditions are evaluated (moto's evaluator alone ignores StringLike): split_frames may list
    the frames bucket under */segments/ only, so another prefix denies its ListObjectsV2."""
    def edit(sts: list[dict]) -> list[dict]:
        for s in sts:
            if "StringLike" in s.get("Condition", {}):
                s["Condition"]["StringLike"]["s3:prefix"] = ["*/parts/*"]
        return sts

    denied, _, _ = check_roles(workload, drifted(templates["default"], "SplitFramesRole", edit))
    assert denied and all("s3:ListBucket on arn:aws:s3:::vidsift-dev-123456789012-frames {'s3:prefix'" in d
                          for d in denied), denied
