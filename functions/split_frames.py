"""Stage 1: a video arrived in the raw bucket; sample its frames into the frames bucket.

Two kinds of message arrive on this queue: S3's notification of a new video, and the
segment messages this function queues for itself when a video is longer than
SEGMENT_SECONDS (vidsift.core.segments). This handler parses them and reports failures;
the work (``process_video``, ``process_segment``, each run once) is in vidsift.stages.splitting.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidsift.core.errors import BadInputError
from vidsift.core.events import parse_s3_message
from vidsift.core.messages import SegmentTask, VideoTask
from vidsift.stages import splitting, startup
from vidsift.stages.runtime import failures_recorded, once, permanent_failure, record_bad_input, sqs_processor
from vidsift.stages.splitting import STAGE, logger


def _segment_task(body: str) -> SegmentTask | None:
    try:
        doc = json.loads(body)
    except (TypeError, json.JSONDecodeError):
        return None  # parse_s3_message names the problem
    return SegmentTask.from_json(doc)


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    """One message; Powertools passes ``lambda_context`` (its deadline bounds the idempotency lock).

    A bad input (not a video, no video stream, a malformed message...) is permanent: it is
    recorded once under errors/ (per object version) and the message acknowledged, counted
    on its own metric rather than retried into the DLQ. Anything else fails the message."""
    try:
        task = _segment_task(record.body)
        if task is not None:
            try:
                with failures_recorded(logger, STAGE, record, task.subject, task.version_id):
                    once(splitting.process_segment, task.to_obj(), lambda_context, key=splitting.SEGMENT_KEY)
            except BadInputError as exc:
                permanent_failure(logger, STAGE, exc)
            return
        refs = parse_s3_message(record.body)
    except BadInputError as exc:
        if exc.what == "SQS message":
            record_bad_input(logger, STAGE, exc, subject=f"sqs:{record.message_id}", message_id=record.message_id)
        permanent_failure(logger, STAGE, exc)
        return
    failed: Exception | None = None
    for ref in refs:  # one record's failure must not skip the others of the message
        try:
            with failures_recorded(logger, STAGE, record, ref.uri, ref.version_id):
                video = VideoTask(bucket=ref.bucket, key=ref.key, etag=ref.etag, size=ref.size,
                                  version_id=ref.version_id, source_queue_arn=record.event_source_arn or "")
                once(splitting.process_video, video.to_json(), lambda_context)
        except BadInputError as exc:
            permanent_failure(logger, STAGE, exc)
        except Exception as exc:
            failed = failed or exc
    if failed is not None:
        raise failed


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry: settings checked once, then each video or segment message on its own; only
    failed records are reported."""
    startup.check(STAGE)  # a bad setting: one error here, before any record (issue 26)
    # A processor per invocation: it holds the batch's state, and invocations may run side by side.
    return process_partial_response(event=event, record_handler=record_handler, processor=sqs_processor(),
                                    context=context)
