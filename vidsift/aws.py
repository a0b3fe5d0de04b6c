"""Every AWS call vidsift makes goes through this module.

Clients read their endpoints from the environment (boto3 honours ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>``), so the same handler talks to AWS in Lambda and to the
embedded local stack on a laptop without knowing which. Transient errors and throttling
are retried by botocore's standard retry mode (exponential backoff with jitter); the few
things botocore cannot retry for us (Firehose's per-record failures, SageMaker container
5xx surfaced as ModelError) are retried here.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

T = TypeVar("T")

#: Attempts per call including the first; botocore spaces them with jittered backoff
#: (up to 1, 2, 4, 8 s). Past that, SQS redelivery is the next, slower layer of retry.
MAX_ATTEMPTS = 5
#: Seconds to wait for an answer before the attempt counts as failed (and is retried).
READ_TIMEOUT_S = 60.0
#: The person-detection endpoint: a serverless endpoint scaled to zero answers its first
#: request only after a cold start (expected 20-60 s with the dependencies inside
#: model.tar.gz: provisioning, fetching and unpacking the 140 MB artefact, importing torch
#: and Ultralytics, loading the weights; sagemaker/README.md). So a long read timeout and few
#: attempts: a retry would only queue behind the same cold start. detect_people's timeout (in
#: the contract) stays above attempts x timeout. The read timeout is the only one that may be
#: overridden (``VIDSIFT_ENDPOINT_READ_TIMEOUT_S``, e.g. for tests of a hung endpoint): an
#: override meant for the endpoint must never shorten S3's, Firehose's or Rekognition's.
ENDPOINT_SERVICE = "sagemaker-runtime"
ENDPOINT_READ_TIMEOUT_S = 120.0
ENDPOINT_MAX_ATTEMPTS = 2
ENDPOINT_READ_TIMEOUT_ENV = "VIDSIFT_ENDPOINT_READ_TIMEOUT_S"
_lock = threading.Lock()


def _config(read_timeout_s: float, attempts: int = MAX_ATTEMPTS) -> Config:
    return Config(retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=5,
                  read_timeout=read_timeout_s, tcp_keepalive=True)


@cache
def _loader() -> Any:
    """botocore's reader of service models, shared: parsing a model's JSON (S3's is large)
    is most of a client's creation, and each new session would parse it again. The models
    are static; sessions stay new per client, so credentials are read from the environment
    as it is when the client is made."""
    from botocore.loaders import create_loader

    return create_loader()


def _session() -> boto3.session.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader())
    return boto3.session.Session(botocore_session=core)


@cache
def _client(service: str, endpoint_url: str | None, region: str | None, read_timeout_s: float = READ_TIMEOUT_S) -> Any:
    attempts = ENDPOINT_MAX_ATTEMPTS if service == ENDPOINT_SERVICE else MAX_ATTEMPTS
    with _lock:  # boto3's sessions are not thread-safe while creating clients
        return _session().client(service, config=_config(read_timeout_s, attempts), region_name=region)


def client(service: str) -> Any:
    """A cached client per service and per endpoint environment.

    The endpoint variables (and the read timeout) are part of the cache key so tests and the
    local stack may repoint the process at a new local AWS without stale clients surviving.
    """
    import os

    env_key = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
    endpoint = os.environ.get(env_key) or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return _client(service, endpoint, region, read_timeout_s(service))


def read_timeout_s(service: str) -> float:
    """The read timeout a service's client uses: the override applies to the endpoint alone."""
    import os

    if service == ENDPOINT_SERVICE:
        return float(os.environ.get(ENDPOINT_READ_TIMEOUT_ENV) or ENDPOINT_READ_TIMEOUT_S)
    return READ_TIMEOUT_S


def reset_clients() -> None:
    _client.cache_clear()


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def backoff(attempt: int, base: float = 0.2, cap: float = 10.0) -> float:
    """Full-jitter exponential backoff, AWS's recommended shape."""
    return random.uniform(0, min(cap, base * (2**attempt)))


#: Error codes that mean "too many requests at once": worth waiting longer for than a 5xx.
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
#: First backoff step (seconds) after throttling: botocore's own attempts (5, jittered, a few
#: seconds in all) were spent already, so the burst needs longer to pass.
THROTTLED_BACKOFF_BASE_S = 1.0


def with_retries(call: Callable[[], T], *, retryable: Callable[[BaseException], bool], attempts: int = 4) -> T:
    """Retry what botocore cannot (or has already given up on): full-jitter backoff, longer
    after throttling (up to 1, 2, 4 s) than after a failure (up to 0.2, 0.4, 0.8 s)."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not retryable(exc):
                raise
            throttled = error_code(exc) in THROTTLING_CODES
            time.sleep(backoff(attempt, base=THROTTLED_BACKOFF_BASE_S) if throttled else backoff(attempt))
    raise AssertionError("unreachable")


# --- S3 --------------------------------------------------------------------------------


def head_object(bucket: str, key: str, version_id: str = "") -> dict[str, Any]:
    """HeadObject, of one version when ``version_id`` is given (s3:GetObjectVersion)."""
    extra = {"VersionId": version_id} if version_id else {}
    return client("s3").head_object(Bucket=bucket, Key=key, **extra)


def put_object(bucket: str, key: str, body: bytes, *, content_type: str, metadata: dict[str, str]) -> str:
    # No ServerSideEncryption here: the bucket's default (SSE-S3, or SSE-KMS with kms=true) applies.
    resp = client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata)
    return str(resp.get("ETag", "")).strip('"')


def put_json(bucket: str, key: str, document: Any) -> None:
    body = json.dumps(document, sort_keys=True, indent=1).encode()
    put_object(bucket, key, body, content_type="application/json", metadata={})


def copy_object(src_bucket: str, key: str, dst_bucket: str, *, metadata: dict[str, str],
                dst_key: str | None = None) -> None:
    """Server-side copy: the frame's bytes never pass through the function. The copy keeps
    the key unless ``dst_key`` names another (an edge snapshot becomes a frame key)."""
    client("s3").copy_object(
        Bucket=dst_bucket,
        Key=dst_key or key,
        CopySource={"Bucket": src_bucket, "Key": key},
        Metadata=metadata,
        MetadataDirective="REPLACE",
        ContentType="image/jpeg",
    )


class S3RangeReader(io.RawIOBase):
    """A seekable, read-only file over ranged GETs of one S3 object.

    FFmpeg (through PyAV) reads containers by seeking around, e.g. to an MP4's trailing
    ``moov`` atom. Serving those reads from a few cached blocks keeps memory bounded and
    never copies the whole video to /tmp, so a video larger than Lambda's ephemeral
    storage is fine.
    """

    def __init__(self, bucket: str, key: str, *, size: int, etag: str | None = None, version_id: str = "",
                 block_size: int = 4 << 20, max_blocks: int = 6) -> None:
        super().__init__()
        self.bucket, self.key, self.size, self.etag = bucket, key, size, etag
        self.version_id = version_id
        self.block_size, self.max_blocks = block_size, max_blocks
        self._pos = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self.bytes_fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        return self._pos

    def _block(self, index: int) -> bytes:
        if index in self._blocks:
            self._blocks.move_to_end(index)
            return self._blocks[index]
        start = index * self.block_size
        end = min(self.size, start + self.block_size) - 1
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key, "Range": f"bytes={start}-{end}"}
        if self.version_id:  # that version, whatever was written under the key since
            kwargs["VersionId"] = self.version_id
        elif self.etag:  # a video replaced mid-read must fail, not splice two files
            kwargs["IfMatch"] = self.etag
        data = client("s3").get_object(**kwargs)["Body"].read()
        self.bytes_fetched += len(data)
        self._blocks[index] = data
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self.size or len(view) == 0:
            return 0
        index, offset = divmod(self._pos, self.block_size)
        block = self._block(index)
        n = min(len(view), len(block) - offset)
        view[:n] = block[offset : offset + n]
        self._pos += n
        return n


def get_json(bucket: str, key: str) -> Any:
    return json.loads(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def list_keys(bucket: str, prefix: str) -> list[str]:
    """Every key under a prefix, in key order."""
    keys: list[str] = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def list_json(bucket: str, prefix: str) -> list[Any]:
    """Every JSON document under a prefix, in key order."""
    s3 = client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json")]
    return [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in sorted(keys)]


def get_bytes_if_any(bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when there is no such key (a 404 needs s3:ListBucket: without
    it S3 answers 403, which is raised like any other error)."""
    try:
        return get_object_bytes(bucket, key)
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise


def account_id() -> str:
    """The account of the credentials in use (names of a deployed stage: contract.ResourceNames)."""
    return str(client("sts").get_caller_identity()["Account"])


def put_json_lines(bucket: str, key: str, body: bytes) -> None:
    """Rows as one JSON-lines object (a video's crossings or zone visits: vidsift.stages.counting)."""
    put_object(bucket, key, body, content_type="application/x-ndjson", metadata={})


# --- SQS -------------------------------------------------------------------------------


def send_messages(url: str, bodies: list[dict[str, Any]]) -> None:
    """Queue JSON messages; those SendMessageBatch refuses are sent again one by one
    (a duplicate is harmless: every consumer is idempotent)."""
    sqs = client("sqs")
    for i in range(0, len(bodies), 10):  # SendMessageBatch takes 10 at most
        chunk = bodies[i : i + 10]
        resp = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "MessageBody": json.dumps(b, sort_keys=True)} for n, b in enumerate(chunk)])
        for n in sorted(int(f["Id"]) for f in resp.get("Failed", [])):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(chunk[n], sort_keys=True))


def queue_url_from_arn(arn: str) -> str | None:
    """The URL of the queue a record came from (its eventSourceARN)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return None
    return str(client("sqs").get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])


# --- Firehose --------------------------------------------------------------------------

#: PutRecordBatch takes at most 500 records and 4 MiB per call.
FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_BYTES = 4 << 20


def _firehose_chunks(lines: Sequence[bytes]) -> Iterable[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and (len(chunk) == FIREHOSE_MAX_RECORDS or size + len(line) > FIREHOSE_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield chunk


def put_records(stream: str, records: Sequence[dict[str, Any]], *, attempts: int = 6) -> None:
    """Deliver every record once: resend exactly the ones Firehose reports as failed.

    Each record is one JSON line ending in a newline, which is what Athena's JSON SerDe
    (and DuckDB) expect once Firehose concatenates them into an object.
    """
    lines = [(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n").encode() for r in records]
    for chunk in _firehose_chunks(lines):
        pending = chunk
        for attempt in range(attempts):
            resp = client("firehose").put_record_batch(
                DeliveryStreamName=stream, Records=[{"Data": d} for d in pending]
            )
            if not resp.get("FailedPutCount"):
                break
            pending = [d for d, r in zip(pending, resp["RequestResponses"], strict=True) if r.get("ErrorCode")]
            if attempt == attempts - 1:
                raise FirehoseDeliveryError(stream, len(pending), resp)
            time.sleep(backoff(attempt))


class FirehoseDeliveryError(RuntimeError):
    """Records Firehose kept refusing after every retry: raised so the batch fails and SQS
    redelivers it, rather than rows silently missing."""

    def __init__(self, stream: str, failed: int, resp: dict[str, Any]) -> None:
        codes = sorted({r.get("ErrorCode", "") for r in resp.get("RequestResponses", []) if r.get("ErrorCode")})
        super().__init__(f"Firehose {stream}: {failed} records still failing after retries ({', '.join(codes)})")


# --- SageMaker runtime and Rekognition ---------------------------------------------------


def model_error_status(exc: BaseException) -> int | None:
    """The HTTP status the model container answered with, when SageMaker relayed it as ModelError."""
    if error_code(exc) != "ModelError" or not isinstance(exc, ClientError):
        return None
    original = exc.response.get("OriginalStatusCode")
    return original if isinstance(original, int) else None


def _endpoint_error_is_transient(exc: BaseException) -> bool:
    """The runtime's own 5xx (botocore makes only ENDPOINT_MAX_ATTEMPTS attempts), the
    container's 5xx (relayed as ModelError), and throttling: a burst of detect_people
    invocations beyond the endpoint's concurrency is refused, not broken. A read timeout is
    not retried here: botocore already tried again, and a third wait would only add minutes."""
    if error_code(exc) in THROTTLING_CODES:
        return True
    if isinstance(exc, ClientError) and int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) >= 500:
        return True
    status = model_error_status(exc)
    return status is not None and status >= 500


def invoke_endpoint(endpoint: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """One request for a whole batch of frames; returns the JSON answer and the HTTP headers."""

    def call() -> Any:
        return client("sagemaker-runtime").invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Accept="application/json",
            Body=json.dumps(payload).encode(),
        )

    resp = with_retries(call, retryable=_endpoint_error_is_transient)
    return json.loads(resp["Body"].read()), resp["ResponseMetadata"].get("HTTPHeaders", {})


def detect_faces(bucket: str, key: str) -> dict[str, Any]:
    """Rekognition reads the image straight from S3: no download in the function."""
    return client("rekognition").detect_faces(Image={"S3Object": {"Bucket": bucket, "Name": key}}, Attributes=["ALL"])


# --- Face collections (known faces) --------------------------------------------------------


def get_object_bytes(bucket: str, key: str) -> bytes:
    """The whole object (a frame: a few hundred KB), for cropping faces out of it."""
    body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return bytes(body.read())
    finally:
        body.close()


def create_collection(collection: str) -> bool:
    """Create the collection; False if it already existed (creating is then a no-op)."""
    try:
        client("rekognition").create_collection(CollectionId=collection)
    except ClientError as exc:
        if error_code(exc) == "ResourceAlreadyExistsException":
            return False
        raise
    return True


def collection_face_count(collection: str) -> int:
    return int(client("rekognition").describe_collection(CollectionId=collection)["FaceCount"])


def search_faces_by_image(collection: str, image: bytes, threshold: float) -> dict[str, Any]:
    """The best match (at or above ``threshold``) of the largest face in ``image``."""
    return client("rekognition").search_faces_by_image(
        CollectionId=collection, Image={"Bytes": image}, FaceMatchThreshold=threshold, MaxFaces=1,
    )


def index_faces(collection: str, image: bytes, external_image_id: str) -> dict[str, Any]:
    """Index the largest face of ``image`` under ``external_image_id`` (one photo, one person)."""
    return client("rekognition").index_faces(
        CollectionId=collection, Image={"Bytes": image}, ExternalImageId=external_image_id, MaxFaces=1,
        QualityFilter="AUTO", DetectionAttributes=["DEFAULT"],
    )


def list_faces(collection: str) -> list[dict[str, Any]]:
    faces: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"CollectionId": collection, "MaxResults": 4096}
    while True:
        resp = client("rekognition").list_faces(**kwargs)
        faces.extend(resp.get("Faces", []))
        if not resp.get("NextToken"):
            return faces
        kwargs["NextToken"] = resp["NextToken"]


def delete_faces(collection: str, face_ids: Sequence[str]) -> list[str]:
    """Delete faces (4096 per call, Rekognition's limit); returns the ids deleted."""
    deleted: list[str] = []
    for start in range(0, len(face_ids), 4096):
        resp = client("rekognition").delete_faces(CollectionId=collection, FaceIds=list(face_ids[start:start + 4096]))
        deleted.extend(resp.get("DeletedFaces", []))
    return deleted


# --- Tracking: each segment's detections and progress, each video's progress (DynamoDB) -
#
# One table, three kinds of item under a partition key ``part`` and a number ``n``
# (vidsift.core.progress): a frame's detections (part = "<video>/<segment>", n = frame
# index), a segment's progress (the same part, n = -1: frames expected, done, given up) and
# a video's (part = "<video>", n = -1: segments, tracked, end state). Sets, not counters: a
# frame counted twice (a retry) is still one frame, so the moment a segment is complete is
# exact. One key per segment: no item grows with the video, and a long video's frames are
# spread over many partition keys. A sparse index (contract ``tracking_open_index``) holds
# the videos without an end state, by last update, for the stalled-video sweeper.

PROGRESS_N = -1
#: Tracking items expire (DynamoDB TTL on ``expires_at``) two weeks after their last write:
#: long enough for a video's last frame to come back from a DLQ redrive, and the rows are the record.
TRACKING_TTL_S = 14 * 24 * 3600


def _tracking_expiry() -> int:
    return int(time.time()) + TRACKING_TTL_S


def _ddb_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, set | frozenset):
        return {"NS": [str(v) for v in sorted(value)]}
    return {"S": str(value)}


def _ddb_plain(attr: dict[str, Any]) -> Any:
    (kind, value), = attr.items()
    if kind == "N":
        number = float(value)
        return int(number) if number.is_integer() else number
    if kind == "NS":
        return {int(float(v)) for v in value}
    if kind == "BOOL":
        return bool(value)
    return value


_HIDDEN = ("part", "n", "expires_at")


def tracking_mark(table: str, part: str, *, set_: dict[str, Any] | None = None,
                  add: dict[str, set[int]] | None = None, default: dict[str, Any] | None = None,
                  remove: Iterable[str] = ()) -> dict[str, Any]:
    """Update a progress item: SET plain values, SET ``default``'s only where absent, ADD
    numbers to sets, REMOVE attributes. Returns UPDATED_NEW: the attributes the update named,
    as they are now (whole sets, not the whole item; DynamoDB may leave out one whose value
    did not change, so a caller needing one reads the item: tracking_item). With nothing to
    update, the whole item (a strongly consistent GetItem)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets, adds = [], []
    if set_ or any(add.values() if add else ()):
        set_ = {**(set_ or {}), "expires_at": _tracking_expiry()}
    for i, (k, v) in enumerate((set_ or {}).items()):
        names[f"#s{i}"], values[f":s{i}"] = k, _ddb_value(v)
        sets.append(f"#s{i} = :s{i}")
    for i, (k, v) in enumerate((default or {}).items()):
        names[f"#d{i}"], values[f":d{i}"] = k, _ddb_value(v)
        sets.append(f"#d{i} = if_not_exists(#d{i}, :d{i})")
    for i, (k, v) in enumerate((add or {}).items()):
        if v:
            names[f"#a{i}"], values[f":a{i}"] = k, _ddb_value(set(v))
            adds.append(f"#a{i} :a{i}")
    removes = []
    for i, k in enumerate(remove):
        names[f"#r{i}"] = k
        removes.append(f"#r{i}")
    expr = " ".join(filter(None, ["SET " + ", ".join(sets) if sets else "", "ADD " + ", ".join(adds) if adds else "",
                                  "REMOVE " + ", ".join(removes) if removes else ""]))
    if not expr:
        return tracking_item(table, part)
    key = {"part": {"S": part}, "n": {"N": str(PROGRESS_N)}}
    extra: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
    item = client("dynamodb").update_item(TableName=table, Key=key, UpdateExpression=expr,
                                          ExpressionAttributeNames=names, ReturnValues="UPDATED_NEW",
                                          **extra).get("Attributes", {})
    return {k: _ddb_plain(v) for k, v in item.items() if k not in _HIDDEN}


def tracking_item(table: str, part: str) -> dict[str, Any]:
    """A whole progress item, read strongly consistently ({} if there is none)."""
    key = {"part": {"S": part}, "n": {"N": str(PROGRESS_N)}}
    item = client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
    return {k: _ddb_plain(v) for k, v in item.items() if k not in _HIDDEN}


def tracking_open(table: str, index: str, *, updated_before: float) -> list[str]:
    """Videos without an end state last updated before ``updated_before`` (epoch seconds), from
    the sparse index on ``open`` (only such videos carry it): the sweeper's candidates."""
    out: list[str] = []
    paginator = client("dynamodb").get_paginator("query")
    for page in paginator.paginate(TableName=table, IndexName=index,
                                   KeyConditionExpression="#o = :o AND #u < :u",
                                   ExpressionAttributeNames={"#o": "open", "#u": "updated_at"},
                                   ExpressionAttributeValues={":o": {"S": "open"},
                                                              ":u": {"N": str(updated_before)}}):
        out += [item["part"]["S"] for item in page.get("Items", [])]
    return out


#: BatchWriteItem takes 25 items, BatchGetItem 100 keys, per call.
DDB_WRITE_BATCH = 25
DDB_GET_BATCH = 100


def _frame_item(part: str, frame_index: int, doc: dict[str, Any]) -> dict[str, Any]:
    return {"part": {"S": part}, "n": {"N": str(frame_index)},
            "doc": {"S": json.dumps(doc, separators=(",", ":"), sort_keys=True)},
            "expires_at": {"N": str(_tracking_expiry())}}


def _until_processed(send: Callable[[Any], dict[str, Any]], pending: Any, left: Callable[[dict[str, Any]], Any],
                     what: str, attempts: int) -> None:
    """Call ``send(pending)`` until ``left(answer)`` (what DynamoDB left unprocessed, e.g. on a
    throttled partition) is empty, resending exactly that with backoff; raise past ``attempts``."""
    for attempt in range(attempts):
        pending = left(send(pending))
        if not pending:
            return
        if attempt == attempts - 1:
            raise RuntimeError(f"DynamoDB: {what} still unprocessed after {attempts} attempts")
        time.sleep(backoff(attempt))


def tracking_put_frames(table: str, frames: Sequence[tuple[str, int, dict[str, Any]]], *, attempts: int = 6) -> None:
    """Several frames' detections and metadata in as few calls as DynamoDB takes (25 items a
    BatchWriteItem), resending exactly the items it leaves unprocessed (throttled partitions)
    with backoff. A frame twice in ``frames`` is written once, with its last document
    (DynamoDB refuses a batch that names one key twice)."""
    items = {(part, n): _frame_item(part, n, doc) for part, n, doc in frames}
    requests = [{"PutRequest": {"Item": item}} for item in items.values()]
    for start in range(0, len(requests), DDB_WRITE_BATCH):
        _until_processed(lambda batch: client("dynamodb").batch_write_item(RequestItems={table: batch}),
                         requests[start:start + DDB_WRITE_BATCH],
                         lambda resp: resp.get("UnprocessedItems", {}).get(table, []),
                         f"{table} frame items (BatchWriteItem)", attempts)


def tracking_get(table: str, keys: Iterable[tuple[str, int]], *, attempts: int = 6) -> dict[tuple[str, int], Any]:
    """Items by (part, n), read strongly consistently in as few calls as DynamoDB takes (100
    keys a BatchGetItem): frame items as their documents, progress items (n = PROGRESS_N) as
    tracking_mark returns them. Keys without an item are absent from the answer."""
    wanted = list(dict.fromkeys(keys))
    out: dict[tuple[str, int], Any] = {}

    def got(resp: dict[str, Any]) -> Any:
        for item in resp.get("Responses", {}).get(table, []):
            key = (item["part"]["S"], int(item["n"]["N"]))
            out[key] = (json.loads(item["doc"]["S"]) if key[1] != PROGRESS_N else
                        {k: _ddb_plain(v) for k, v in item.items() if k not in _HIDDEN})
        return resp.get("UnprocessedKeys", {}).get(table) or {}

    for start in range(0, len(wanted), DDB_GET_BATCH):
        keys_doc = {"Keys": [{"part": {"S": p}, "n": {"N": str(n)}} for p, n in wanted[start:start + DDB_GET_BATCH]],
                    "ConsistentRead": True}
        _until_processed(lambda batch: client("dynamodb").batch_get_item(RequestItems={table: batch}), keys_doc, got,
                         f"{table} keys (BatchGetItem)", attempts)
    return out


def tracking_frames(table: str, part: str) -> list[dict[str, Any]]:
    """The frame documents of one segment (its partition, frame items only), in frame order
    (strongly consistent reads: the frame that completed the segment was written just before)."""
    paginator = client("dynamodb").get_paginator("query")
    out: list[dict[str, Any]] = []
    for page in paginator.paginate(TableName=table, ConsistentRead=True,
                                   KeyConditionExpression="#p = :p AND #n >= :a",
                                   ExpressionAttributeNames={"#p": "part", "#n": "n"},
                                   ExpressionAttributeValues={":p": {"S": part}, ":a": {"N": "0"}}):
        out += [json.loads(item["doc"]["S"]) for item in page.get("Items", [])]
    return out


# --- Alerts: state (DynamoDB), links (S3 presigned), publishing (SNS) ----------------------


def alert_state_get(table: str, key: str) -> tuple[dict[str, Any] | None, int]:
    """(state document, version) of one alert key; (None, 0) if it has none yet.

    Strongly consistent: a concurrent invocation's write must be seen before deciding.
    """
    item = client("dynamodb").get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
    if not item:
        return None, 0
    return json.loads(item["state"]["S"]), int(item["version"]["N"])


def alert_state_put(table: str, key: str, state: dict[str, Any], *, expected_version: int, expires_at: int) -> bool:
    """Write the state only if nobody wrote since it was read (optimistic concurrency).

    False when another invocation won the race: the caller reads again and re-decides, so
    two concurrent frames can never both start the same alert.
    """
    item = {"pk": {"S": key}, "state": {"S": json.dumps(state, separators=(",", ":"), sort_keys=True)},
            "version": {"N": str(expected_version + 1)}, "expires_at": {"N": str(expires_at)}}
    return _put_if_version(table, item, expected_version)


def _put_if_version(table: str, item: dict[str, Any], expected_version: int) -> bool:
    """PutItem only if the item's ``version`` is still ``expected_version`` (0: no item yet);
    False when another writer got in between (the alert state and the visitors' registry)."""
    if expected_version == 0:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
    else:
        condition = {"ConditionExpression": "version = :v",
                     "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}}
    try:
        client("dynamodb").put_item(TableName=table, Item=item, **condition)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


@cache
def _presign_client(endpoint_url: str | None, region: str) -> Any:
    """SigV4 (required for SSE-KMS objects, and the only signature new regions accept);
    path-style addressing for a local endpoint, virtual-hosted on AWS."""
    style = "path" if endpoint_url else "virtual"
    with _lock:
        return _session().client(
            "s3", region_name=region, endpoint_url=endpoint_url,
            config=Config(signature_version="s3v4", s3={"addressing_style": style}),
        )


def presign_get(bucket: str, key: str, expires_s: int) -> str:
    """A GetObject link anyone holding it can open until it expires (at most 7 days, SigV4's
    limit; with temporary credentials, as in Lambda, at most until they expire)."""
    import os

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return str(_presign_client(endpoint, region).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=max(1, min(int(expires_s), 604800)),
    ))


def publish(topic_arn: str, *, subject: str, messages: dict[str, str], attributes: dict[str, str]) -> str:
    """Publish one message per protocol (``messages["default"]`` for any other) to the topic.

    ``attributes`` become String message attributes, so subscribers can filter (e.g. by
    camera) with SNS subscription filter policies. Returns the MessageId.
    """
    resp = client("sns").publish(
        TopicArn=topic_arn, Subject=subject, MessageStructure="json", Message=json.dumps(messages),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v},
    )
    return str(resp["MessageId"])


# --- Visitors (opt-in): the registry (DynamoDB), the collection's searches, S3 copies ------


def visitor_get(table: str, key: str) -> tuple[dict[str, Any] | None, int]:
    """(document, version) of one registry item (a visitor, a visit, the id counter);
    (None, 0) if there is none. Strongly consistent, as alert_state_get."""
    item = client("dynamodb").get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
    if not item:
        return None, 0
    return json.loads(item["doc"]["S"]), int(item["version"]["N"])


def visitor_put(table: str, key: str, doc: dict[str, Any], *, expected_version: int) -> bool:
    """Write a registry item only if nobody wrote it since it was read (optimistic
    concurrency); False when another invocation won: the caller reads again and re-decides."""
    item = {"pk": {"S": key}, "doc": {"S": json.dumps(doc, separators=(",", ":"), sort_keys=True)},
            "version": {"N": str(expected_version + 1)}}
    return _put_if_version(table, item, expected_version)


def visitor_scan(table: str) -> list[tuple[str, dict[str, Any], int]]:
    """Every registry item: (key, document, version). The registry is small (one item per
    visitor and per visit), and the retention sweep and the admin commands read it whole."""
    out: list[tuple[str, dict[str, Any], int]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        resp = client("dynamodb").scan(**kwargs)
        out += [(i["pk"]["S"], json.loads(i["doc"]["S"]), int(i["version"]["N"])) for i in resp.get("Items", [])]
        if not resp.get("LastEvaluatedKey"):
            return out
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def visitor_delete(table: str, key: str) -> None:
    client("dynamodb").delete_item(TableName=table, Key={"pk": {"S": key}})


def search_visitor_faces(collection: str, image: bytes, threshold: float, max_faces: int = 10) -> dict[str, Any]:
    """The collection's faces most like the largest face in ``image`` (several: a replayed
    visit must see its own face among them, vidsift.core.visitors.decide)."""
    return client("rekognition").search_faces_by_image(
        CollectionId=collection, Image={"Bytes": image}, FaceMatchThreshold=threshold, MaxFaces=max_faces,
    )


def delete_object(bucket: str, key: str) -> None:
    client("s3").delete_object(Bucket=bucket, Key=key)
