"""Plumbing every queue handler and its stage service share: batch processing,
idempotency and error records.

Powertools already does partial batch failures and idempotency well; this module only
wires them to our settings, so each handler stays a page of event parsing and each stage
service (vidsift/stages/) a page of its own logic.

An idempotency record's id is ``<Lambda function name>.<work name>#<hash of the key>``.
Powertools names the work ``<module>.<qualname>`` of the function, so moving a function to
another module would change every id and a replay arriving across the upgrade would be
done twice. The work functions that moved from the handlers into the stage services keep
the name they had there (``work_name``), so their records stay the same across the move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

from vidsift import aws, contract
from vidsift.core import keys
from vidsift.core.errors import BadInputError
from vidsift.core.records import CONTENT_SHA256_KEY, iso, utc_now
from vidsift.logs import function_name
from vidsift.settings import Settings

#: A replay within a week is recognised; a deliberate re-run after that processes again.
IDEMPOTENCY_TTL_S = 7 * 24 * 3600
#: What identifies one piece of work: an S3 object version (segments add their number).
OBJECT_KEY = "[bucket, key, etag]"
#: What identifies a frame's work (detect_people, analyze_faces): the frame, whose key names
#: its video and index, and the SHA-256 of its bytes that split_frames carries in its
#: metadata. Not the ETag: with SSE-KMS an ETag is no digest of the bytes, so a split_frames
#: retry rewriting identical frames gives them new ETags (and new events), which must not
#: make the frames new work. Different bytes under the same key would be.
FRAME_KEY = "[bucket, key, content_sha256]"


def work_name(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Name a unit of work for its idempotency records (see the module's docstring), instead
    of its module and qualname: a name that stays when the code moves. ``name`` is written
    as Powertools wrote it for the function where it used to live, e.g.
    ``functions.detect_people.finish_snapshot_work``."""
    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__dict__["_work_name"] = name
        return fn
    return mark


def _key_prefix(fn: Callable[..., Any]) -> str:
    """The id prefix of ``fn``'s records: Powertools' own (function name, then module and
    qualname) unless the work was named (``work_name``)."""
    name = getattr(fn, "_work_name", None) or f"{fn.__module__}.{fn.__qualname__}"
    return f"{function_name()}.{name}"


def sqs_processor() -> BatchProcessor:
    # Report every failure as a batch item, even when all fail: one shape for SQS to act on.
    """A fresh batch processor: it holds one batch's state, so each invocation gets its own."""
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _config(key: str, context: Any) -> IdempotencyConfig:
    """A config per call: it carries this invocation's Lambda context, whose deadline becomes
    the in-progress record's expiry. A config shared between calls would leak one invocation's
    context into the next (or into a concurrent one), and without a context the record of an
    invocation that timed out would block every retry until the whole record expires."""
    config = IdempotencyConfig(event_key_jmespath=key, expires_after_seconds=IDEMPOTENCY_TTL_S,
                               raise_on_no_idempotency_key=True)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        config.register_lambda_context(context)
    return config


@cache
def _store(fn: Callable[..., Any], key: str, table: str, endpoint: str | None) -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=table, boto3_client=aws.client("dynamodb"))


def _dynamodb_endpoint() -> str:
    """Where DynamoDB is (the client's endpoint: a local stack's changes per stack), part of
    the store's cache key so that a new stack gets a store of its own."""
    return str(aws.client("dynamodb").meta.endpoint_url)


def once(fn: Callable[..., Any], obj: dict[str, Any], context: Any = None, *, key: str = OBJECT_KEY) -> Any:
    """Run ``fn(obj=obj)`` at most once per piece of work: by default an S3 object version
    (bucket, key, etag); ``key`` is the JMESPath over ``obj`` that identifies it.

    S3 and SQS deliver at least once, and a replayed event must not add rows: Powertools'
    idempotency records (DynamoDB) remember what was done and return the stored result.
    Without a table configured (unit tests of the core) the call simply runs.
    """
    table = Settings.from_env().runtime.idempotency_table
    if not table:
        return fn(obj=obj)
    endpoint = _dynamodb_endpoint()
    return idempotent_function(fn, data_keyword_argument="obj", persistence_store=_store(fn, key, table, endpoint),
                               config=_config(key, context), key_prefix=_key_prefix(fn))(obj=obj)


def frame_work(obj: dict[str, Any], metadata: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The idempotency payload and key of the work on a frame (``obj``: bucket, key, etag,
    size), given its S3 user metadata: keyed on FRAME_KEY when the metadata carries the
    content hash, else (an edge snapshot's alert-only copy, a frame written before hashes)
    on the object version as before."""
    digest = metadata.get(CONTENT_SHA256_KEY)
    if digest:
        return {**obj, "content_sha256": digest}, FRAME_KEY
    return dict(obj), OBJECT_KEY


def done(fn: Callable[..., Any], obj: dict[str, Any], *, key: str = OBJECT_KEY) -> bool:
    """Whether ``once(fn, obj, key=key)`` completed already (and would only return the stored
    result): lets a stage leave done work out of a batched call made before ``once``, such as
    detect_people's one endpoint call per batch. Work in progress elsewhere is not done."""
    table = Settings.from_env().runtime.idempotency_table
    if not table:
        return False
    endpoint = _dynamodb_endpoint()
    store = _store(fn, key, table, endpoint)
    # The same store and record id as once's (the work's name prefixes the hash).
    store.configure(config=_config(key, None), key_prefix=_key_prefix(fn))
    try:
        record = store.get_record(obj)
    except IdempotencyItemNotFoundError:
        return False
    return record is not None and record.status == "COMPLETED"


def record_bad_input(logger: Logger, stage: str, exc: BadInputError, *, subject: str, message_id: str | None,
                     version: str = "") -> None:
    """Write the reason where users look (errors/ in the analytics bucket, one object per
    input and object version). A bad input is permanent: the handler then acknowledges the
    message (permanent_failure), so it is recorded once, never retried into the DLQ."""
    logger.error(str(exc), extra={"stage": stage, "subject": subject, "message_id": message_id})
    _write_error_record(logger, stage, subject, exc.what, exc.reason, message_id, version)


#: The metric a permanent bad input counts on (vidsift.stages.runtime.metric): a user's
#: mistake (not a video, no video stream...), kept apart from the DLQ alarms, which mean an
#: operational fault outlasted every retry.
BAD_INPUTS_METRIC = "BadInputs"


def metric(logger: Logger, name: str, value: float, **dimensions: str) -> None:
    """One CloudWatch metric value, as an embedded metric format log line: CloudWatch Logs
    turns it into the metric, so no PutMetricData call (and no grant) is needed, and locally
    it is a log line on stderr like any other. Namespace: METRICS_NAMESPACE (the stack's prefix)."""
    import time

    namespace = Settings.from_env().runtime.metrics_namespace
    logger.info(f"metric {name}={value:g}", extra={
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
            {"Namespace": namespace, "Dimensions": [sorted(dimensions)],
             "Metrics": [{"Name": name, "Unit": "Count"}]}]},
        name: value, **dimensions})


def permanent_failure(logger: Logger, stage: str, exc: BadInputError) -> None:
    """A bad input was recorded (record_bad_input): count it on its own metric and let the
    handler acknowledge the message. Retrying cannot help; five deliveries would only cost
    five downloads and wake the operator through the DLQ alarm for a user's mistake."""
    logger.info("bad input acknowledged: recorded under errors/, not retried", extra={"what": exc.what})
    metric(logger, BAD_INPUTS_METRIC, 1, Stage=stage)


def record_gave_up(logger: Logger, stage: str, exc: BaseException, record: SQSRecord, subjects: list[str]) -> None:
    """A fault that outlasted every retry (the endpoint down for an hour, Rekognition throttled
    throughout) would reach the DLQ with its reason only in the logs. On the message's last
    delivery before the DLQ, write it where bad inputs are explained. Earlier deliveries write
    nothing: a later one may still succeed, and a stale error would then be a false alarm."""
    deliveries = int(record.attributes.approximate_receive_count or 0)
    if deliveries < int(contract.stage(stage)["max_receive_count"]):
        return
    reason = (f"failed on all {deliveries} deliveries, so the message goes to the dead-letter queue "
              f"(redrive it once the fault is fixed); last error: {type(exc).__name__}: {exc}")
    for subject in subjects or [f"sqs:{record.message_id}"]:
        logger.error(reason, extra={"stage": stage, "subject": subject, "message_id": record.message_id})
        _write_error_record(logger, stage, subject, subject, reason, record.message_id)


@contextmanager
def failures_recorded(logger: Logger, stage: str, record: SQSRecord, subject: str, version: str = "") -> Iterator[None]:
    """Explain a failure of the work on ``subject`` (record_bad_input, record_gave_up), then
    let it propagate (a bad input: for the handler to acknowledge, permanent_failure)."""
    try:
        yield
    except BadInputError as exc:
        record_bad_input(logger, stage, exc, subject=subject, message_id=record.message_id, version=version)
        raise
    except Exception as exc:
        record_gave_up(logger, stage, exc, record, [subject])
        raise


def _write_error_record(logger: Logger, stage: str, subject: str, what: str, reason: str,
                        message_id: str | None, version: str = "") -> None:
    bucket = Settings.from_env().runtime.analytics_bucket
    if not bucket:
        return
    try:
        aws.put_json(bucket, keys.error_key(stage, subject, version), {
            "stage": stage, "subject": subject, "what": what, "reason": reason,
            "message_id": message_id, "at": iso(utc_now()), **({"version_id": version} if version else {}),
        })
    except Exception:  # the DLQ still holds the message; never hide the original error
        logger.exception("could not write the error record", extra={"subject": subject})
