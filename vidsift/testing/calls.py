"""Which AWS calls each function makes, and whether its IAM role allows exactly those.

``Recorder`` hooks botocore's events on every client vidsift.aws creates (and on the presign
client) and notes each call made while the local dispatcher runs a stage
(``vidsift.local.dispatcher.acting_as``): the handler's own calls, and the receives and deletes
Lambda's SQS poller makes with the function's role. Work a handler hands to a thread pool keeps
its stage (the pool is made to carry the submitter's context while recording).

``requests`` turns a call into the IAM requests AWS would authorise, implied ones included:
CopyObject reads its source and writes its destination, Rekognition reads an S3Object with the
caller's permissions, a presigned GetObject link is signed with (and so opened as) the
function's credentials, a 404 from S3 is a 404 (not a 403) only with s3:ListBucket on the
bucket, and an object in an SSE-KMS bucket needs kms:Decrypt to be read and
kms:GenerateDataKey to be written (through S3: kms:ViaService), as a message of an SSE-KMS queue
or topic needs to be sent (GenerateDataKey and Decrypt) or received (Decrypt). Local names (stage "local")
are translated to another stage's, so the ARNs are those of the compiled template.

``Role`` evaluates a role's statements with moto's IAM policy evaluator, one statement at a
time, after evaluating the statement's Condition here: moto 5 ignores StringLike, counts a
missing condition key as met, and answers DENIED (not "does not apply") for an Allow whose
condition fails. Anything else it cannot evaluate faithfully (NotAction, NotResource, other
operators, IAM's ? wildcard) raises instead of being misread.
"""

from __future__ import annotations

import contextvars
import fnmatch
import functools
import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from moto.iam.access_control import IAMPolicy, PermissionResult

from vidsift import aws
from vidsift.local.dispatcher import acting_as

REGION = "us-east-1"


@dataclass
class Call:
    """One API call (or one presigned URL) a stage's function made."""

    stage: str
    part: str  # "handler" or "event source mapping"
    service: str
    operation: str
    params: dict[str, Any]
    presign: bool = False
    status: int | None = None
    thread: str = ""

    def __str__(self) -> str:
        what = "presigned " if self.presign else ""
        brief = {k: v for k, v in self.params.items() if k in ("Bucket", "Key", "CopySource", "QueueUrl", "TableName",
                                                              "DeliveryStreamName", "EndpointName", "TopicArn",
                                                              "CollectionId", "Prefix")}
        if "Image" in self.params and "S3Object" in self.params["Image"]:
            brief["S3Object"] = self.params["Image"]["S3Object"]
        return f"{self.stage} ({self.part}): {what}{self.service} {self.operation} {brief} -> {self.status}"


@dataclass
class Recorder:
    """Records every AWS call each stage makes during a local run (hooked into botocore), so a test
    can check each function's IAM role allows exactly what the code calls: a missing grant
    otherwise shows only on AWS, after a deploy."""

    calls: list[Call] = field(default_factory=list)
    #: Calls through vidsift.aws clients outside any stage, with the thread they ran on: the
    #: test's own set-up on the main thread, or (on another thread) a handler's call whose
    #: stage was lost, which would escape the check.
    unattributed: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ---------------------------------------------------------------- botocore hooks

    def _on_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        who = acting_as.get()
        if who is None:
            with self._lock:
                self.unattributed.append((threading.current_thread().name, service, model.name))
            return
        call = Call(stage=who[0], part=who[1], service=service, operation=model.name,
                    params=dict(params), presign=bool(context.get("is_presign_request")),
                    thread=threading.current_thread().name)
        context["vidsift_call"] = call
        with self._lock:
            self.calls.append(call)

    def _on_after_call(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        call = context.get("vidsift_call")
        if call is not None:
            call.status = http_response.status_code

    def hook(self, client: Any) -> Any:
        """Register the recording hooks on ``client`` (every client vidsift.aws makes goes through this),
        and return it, so the hook is set where the client is made."""
        client.meta.events.register("provide-client-params", self._on_params, unique_id="vidsift-calls-params")
        client.meta.events.register("after-call", self._on_after_call, unique_id="vidsift-calls-after")
        return client

    @contextmanager
    def recording(self) -> Iterator[Recorder]:
        """Every client vidsift.aws creates from now on is hooked (cached ones are dropped
        first, the idempotency store's too), and thread pools carry the submitter's stage."""
        from vidsift.stages import runtime

        make_client, make_presign = aws._client, aws._presign_client
        real_submit = ThreadPoolExecutor.submit

        @functools.cache
        def hooked_client(*args: Any, **kwargs: Any) -> Any:
            return self.hook(make_client.__wrapped__(*args, **kwargs))

        @functools.cache
        def hooked_presign(*args: Any, **kwargs: Any) -> Any:
            return self.hook(make_presign.__wrapped__(*args, **kwargs))

        def submit(pool: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            if acting_as.get() is None:
                return real_submit(pool, fn, *args, **kwargs)
            return real_submit(pool, contextvars.copy_context().run, fn, *args, **kwargs)

        def forget_clients() -> None:
            aws.reset_clients()
            aws._presign_client.cache_clear()
            runtime._store.cache_clear()

        forget_clients()
        aws._client, aws._presign_client = hooked_client, hooked_presign  # type: ignore[assignment]
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
        try:
            yield self
        finally:
            ThreadPoolExecutor.submit = real_submit  # type: ignore[method-assign]
            aws._client, aws._presign_client = make_client, make_presign  # type: ignore[assignment]
            hooked_client.cache_clear()
            hooked_presign.cache_clear()
            forget_clients()


# -------------------------------------------------------------------- calls -> IAM requests


@dataclass(frozen=True)
class Request:
    """One IAM authorisation AWS would make, and why."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    why: str = ""

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Identity of the authorisation (without ``why``), so the same request from two calls counts once."""
        return self.action, self.resource, self.context


@dataclass(frozen=True)
class Names:
    """Local names -> the names of ``stage`` (same account): the prefix is all that differs."""

    local_prefix: str
    stage_prefix: str
    account: str

    def name(self, local: str) -> str:
        """The stage's name of a local resource name (only the prefix differs)."""
        if local.startswith(self.local_prefix + "-"):
            return self.stage_prefix + local[len(self.local_prefix):]
        return local

    def arn_tail(self, arn: str) -> str:
        """An ARN with its resource name translated to the stage's, so local calls check against the
        template's ARNs."""
        head, _, tail = arn.rpartition(":")
        return f"{head}:{self.name(tail)}"


@dataclass(frozen=True)
class Keys:
    """The customer managed KMS key (ARN) that encrypts each resource, by the stage's name
    (bucket: its default encryption; queue, topic). None: SSE-S3, an AWS owned key, or an AWS
    managed key (aws/sqs, aws/sns), whose key policy lets the account's principals use it
    through that service, so no grant in the role is needed."""

    buckets: dict[str, str | None]
    queues: dict[str, str | None] = field(default_factory=dict)
    topics: dict[str, str | None] = field(default_factory=dict)

    def bucket(self, name: str) -> str | None:
        """The KMS key that encrypts bucket ``name``, or None when no grant is needed for it."""
        return self.buckets[name]


def _via(service: str) -> tuple[tuple[str, str], ...]:
    return (("kms:ViaService", f"{service}.{REGION}.amazonaws.com"),)

_S3_READS = {"GetObject", "HeadObject"}
_DDB_OPS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
            "DescribeTable"}
_SQS_ACTIONS = {"SendMessage": "SendMessage", "SendMessageBatch": "SendMessage", "ReceiveMessage": "ReceiveMessage",
                "DeleteMessage": "DeleteMessage", "DeleteMessageBatch": "DeleteMessage",
                "ChangeMessageVisibility": "ChangeMessageVisibility",
                "ChangeMessageVisibilityBatch": "ChangeMessageVisibility", "GetQueueAttributes": "GetQueueAttributes"}
_COLLECTION_OPS = {"SearchFacesByImage", "DescribeCollection", "IndexFaces", "ListFaces", "DeleteFaces",
                   "CreateCollection", "SearchFaces"}


def _s3_object(names: Names, bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{names.name(bucket)}/{key}"


def _object_read(names: Names, keys: Keys, bucket: str, key: str, why: str, *, decrypt: bool = True,
                 status: int | None = None, version: bool = False) -> list[Request]:
    # Reading a named version (GetObject or HeadObject with VersionId) is s3:GetObjectVersion.
    out = [Request("s3:GetObjectVersion" if version else "s3:GetObject", _s3_object(names, bucket, key), why=why)]
    if status == 404:
        out.append(Request("s3:ListBucket", f"arn:aws:s3:::{names.name(bucket)}",
                           why=f"{why}: a missing key answers 404 (not 403) only with ListBucket"))
    key_arn = keys.bucket(names.name(bucket))
    if decrypt and key_arn and status != 404:
        out.append(Request("kms:Decrypt", key_arn, _via("s3"), why=f"{why}: SSE-KMS object"))
    return out


def _object_write(names: Names, keys: Keys, bucket: str, key: str, why: str,
                  params: dict[str, Any] | None = None) -> list[Request]:
    out = [Request("s3:PutObject", _s3_object(names, bucket, key), why=why)]
    params = params or {}
    sse = params.get("ServerSideEncryption")
    if sse == "aws:kms":
        key_arn = params.get("SSEKMSKeyId")
    else:
        key_arn = None if sse == "AES256" else keys.bucket(names.name(bucket))
    if sse == "aws:kms" and not key_arn:
        raise NotImplementedError("PutObject with aws:kms and the AWS managed key")
    if key_arn:
        out.append(Request("kms:GenerateDataKey", key_arn, _via("s3"), why=f"{why}: SSE-KMS bucket"))
    return out


def _queue_arn(names: Names, url: str) -> str:
    path = urlparse(url).path.strip("/").split("/")
    account, name = path[-2], path[-1]
    return f"arn:aws:sqs:{REGION}:{account}:{names.name(name)}"


def requests(call: Call, names: Names, keys: Keys) -> list[Request]:
    """The IAM requests behind one call. Raises NotImplementedError for a call this module
    cannot map, so nothing is left unchecked by accident."""
    p, op, svc = call.params, call.operation, call.service
    what = f"{svc} {op}"
    acct = names.account
    if svc == "s3":
        if call.presign:
            if op != "GetObject":
                raise NotImplementedError(f"presigned {op}")
            return _object_read(names, keys, p["Bucket"], p["Key"], "presigned GetObject link (signed by the role)")
        if op in _S3_READS:
            return _object_read(names, keys, p["Bucket"], p["Key"], what, decrypt=op == "GetObject",
                                status=call.status, version=bool(p.get("VersionId")))
        if op == "PutObject":
            return _object_write(names, keys, p["Bucket"], p["Key"], what, p)
        if op == "CopyObject":
            src = p["CopySource"]
            if isinstance(src, str):
                src_bucket, _, src_key = unquote(src.lstrip("/")).partition("/")
            else:
                src_bucket, src_key = src["Bucket"], src["Key"]
            return (_object_read(names, keys, src_bucket, src_key, "CopyObject source")
                    + _object_write(names, keys, p["Bucket"], p["Key"], "CopyObject destination", p))
        if op == "DeleteObject":  # no KMS: deleting needs no key
            return [Request("s3:DeleteObject", _s3_object(names, p["Bucket"], p["Key"]), why=what)]
        if op in ("ListObjectsV2", "ListObjects"):
            ctx = (("s3:prefix", p["Prefix"]),) if "Prefix" in p else ()
            return [Request("s3:ListBucket", f"arn:aws:s3:::{names.name(p['Bucket'])}", ctx, why=what)]
    elif svc == "sqs":
        if op in _SQS_ACTIONS:
            arn = _queue_arn(names, p["QueueUrl"])
            out = [Request(f"sqs:{_SQS_ACTIONS[op]}", arn, why=what)]
            key_arn = keys.queues.get(arn.rsplit(":", 1)[1])
            if key_arn and _SQS_ACTIONS[op] == "SendMessage":  # SQS: a producer needs both
                out += [Request(a, key_arn, _via("sqs"), why=f"{what}: SSE-KMS queue")
                        for a in ("kms:GenerateDataKey", "kms:Decrypt")]
            if key_arn and op == "ReceiveMessage":
                out.append(Request("kms:Decrypt", key_arn, _via("sqs"), why=f"{what}: SSE-KMS queue"))
            return out
        if op == "GetQueueUrl":
            owner = p.get("QueueOwnerAWSAccountId", acct)
            return [Request("sqs:GetQueueUrl", f"arn:aws:sqs:{REGION}:{owner}:{names.name(p['QueueName'])}", why=what)]
    elif svc == "firehose" and op in ("PutRecordBatch", "PutRecord"):
        return [Request(f"firehose:{op}",
                        f"arn:aws:firehose:{REGION}:{acct}:deliverystream/{names.name(p['DeliveryStreamName'])}",
                        why=what)]
    elif svc == "dynamodb" and op in _DDB_OPS and "TableName" in p:
        index = f"/index/{p['IndexName']}" if p.get("IndexName") else ""  # a Query of an index names the index
        return [Request(f"dynamodb:{op}",
                        f"arn:aws:dynamodb:{REGION}:{acct}:table/{names.name(p['TableName'])}{index}", why=what)]
    elif svc == "dynamodb" and op in _DDB_OPS and "RequestItems" in p:  # BatchGetItem, BatchWriteItem: per table
        return [Request(f"dynamodb:{op}", f"arn:aws:dynamodb:{REGION}:{acct}:table/{names.name(t)}", why=what)
                for t in sorted(p["RequestItems"])]
    elif svc == "sagemaker-runtime" and op == "InvokeEndpoint":
        # IAM spells endpoint ARNs in lower case.
        return [Request("sagemaker:InvokeEndpoint",
                        f"arn:aws:sagemaker:{REGION}:{acct}:endpoint/{names.name(p['EndpointName']).lower()}",
                        why=what)]
    elif svc == "rekognition":
        out: list[Request] = []
        s3obj = (p.get("Image") or {}).get("S3Object")
        if s3obj:  # Rekognition reads the object with the caller's permissions
            out += _object_read(names, keys, s3obj["Bucket"], s3obj["Name"], f"{what} reads its S3Object as the role")
        if op == "DetectFaces":
            return [Request("rekognition:DetectFaces", "*", why=what), *out]
        if op in _COLLECTION_OPS:
            arn = f"arn:aws:rekognition:{REGION}:{acct}:collection/{names.name(p['CollectionId'])}"
            return [Request(f"rekognition:{op}", arn, why=what), *out]
    elif svc == "sns" and op == "Publish":
        arn = names.arn_tail(p["TopicArn"])
        key_arn = keys.topics.get(arn.rsplit(":", 1)[1])
        return [Request("sns:Publish", arn, why=what)] + ([
            Request(a, key_arn, _via("sns"), why=f"{what}: SSE-KMS topic")
            for a in ("kms:GenerateDataKey", "kms:Decrypt")] if key_arn else [])
    raise NotImplementedError(f"no IAM mapping for {svc} {op}")


# -------------------------------------------------------------------- the evaluator


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


_CONDITIONS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringLike": lambda expected, actual: _glob(expected, actual),
}


def condition_met(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """IAM: every operator and every key must hold; a key absent from the request fails it."""
    for operator, keys in condition.items():
        if operator not in _CONDITIONS:
            raise NotImplementedError(f"condition operator {operator}")
        for key, expected in keys.items():
            if key not in context:
                return False
            if not any(_CONDITIONS[operator](e, context[key]) for e in _as_list(expected)):
                return False
    return True


_UNSUPPORTED = re.compile(r"[?+()\[\]{}^$|\\]")


@dataclass
class Role:
    """A role's identity policy statements (inline and managed, already resolved)."""

    statements: list[dict[str, Any]]

    def __post_init__(self) -> None:
        for st in self.statements:
            for element in ("NotAction", "NotResource", "Principal", "NotPrincipal"):
                if element in st:
                    raise NotImplementedError(f"{element} in a role statement: {st}")
            for pattern in _as_list(st["Action"]) + _as_list(st["Resource"]):
                if _UNSUPPORTED.search(pattern):
                    raise NotImplementedError(f"pattern {pattern!r}: moto matches it as a regular expression")

    @staticmethod
    def _statement_result(st: dict[str, Any], req: Request) -> PermissionResult:
        if "Condition" in st and not condition_met(st["Condition"], dict(req.context)):
            return PermissionResult.NEUTRAL
        bare = {k: v for k, v in st.items() if k not in ("Condition", "Sid")}
        doc = json.dumps({"Version": "2012-10-17", "Statement": [bare]})
        return IAMPolicy(doc).is_action_permitted(req.action, req.resource)

    def decide(self, req: Request) -> PermissionResult:
        """DENIED on an explicit deny, PERMITTED on an allow, else NEUTRAL (implicitly denied)."""
        results = [self._statement_result(st, req) for st in self.statements]
        if PermissionResult.DENIED in results:
            return PermissionResult.DENIED
        return PermissionResult.PERMITTED if PermissionResult.PERMITTED in results else PermissionResult.NEUTRAL

    def grants(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(action, resource, statement) for every pair an Allow statement grants."""
        return [(a, r, st) for st in self.statements if st["Effect"] == "Allow"
                for a in _as_list(st["Action"]) for r in _as_list(st["Resource"])]

    def grant_used(self, action: str, resource: str, statement: dict[str, Any], reqs: list[Request]) -> bool:
        """Whether some recorded request needs this one action-resource pair of ``statement``: a grant no
        request needs is wider than the code requires."""
        single = {"Effect": "Allow", "Action": action, "Resource": resource}
        if "Condition" in statement:
            single["Condition"] = statement["Condition"]
        return any(self._statement_result(single, r) == PermissionResult.PERMITTED for r in reqs)


def denials(role: Role, reqs: dict[Request, list[Call]]) -> list[str]:
    """Every request the role does not allow, with a call that needed it."""
    out = []
    for req, calls in sorted(reqs.items(), key=lambda kv: kv[0].key):
        result = role.decide(req)
        if result != PermissionResult.PERMITTED:
            ctx = f" {dict(req.context)}" if req.context else ""
            out.append(f"{result.name}: {req.action} on {req.resource}{ctx} ({req.why}; e.g. {calls[0]})")
    return out


def unused_grants(role: Role, reqs: list[Request], stage: str,
                  unexercised: dict[tuple[str, str, str], str]) -> tuple[list[str], list[str]]:
    """Grants no request uses and no ``unexercised`` entry (stage, action, resource glob) names;
    and the entries that name no unused grant of this stage (stale)."""
    unused, matched = [], set()
    for action, resource, st in role.grants():
        if role.grant_used(action, resource, st, reqs):
            continue
        named = [k for k in unexercised if k[0] == stage and k[1] == action and _glob(k[2], resource)]
        if named:
            matched.update(named)
        else:
            cond = f" when {st['Condition']}" if "Condition" in st else ""
            unused.append(f"{stage}: {action} on {resource}{cond}")
    stale = [f"{k}: {v}" for k, v in unexercised.items() if k[0] == stage and k not in matched]
    return unused, stale
