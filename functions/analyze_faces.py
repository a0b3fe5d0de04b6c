"""Stage 4: faces, once per visit. track_people sends one message per group of tracks
(people followed through a video) with the few frames it chose for each; the work
(DetectFaces on those frames, the known-faces search, alerts, the ``faces`` and ``tracks``
rows) is in vidsift.stages.faces. This handler parses each message, runs the group's work
once (its idempotency key: the video and its face-work document) and reports failures.

A message that names an edge snapshot instead is one queued here before the alert fast
lane had its own queue (functions/alert_faces.py): it gets that lane's work."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidsift.core import completion
from vidsift.core.errors import BadInputError
from vidsift.settings import Settings
from vidsift.stages import faces, rate, startup
from vidsift.stages.faces import STAGE, logger
from vidsift.stages.runtime import failures_recorded, once, permanent_failure, record_bad_input, sqs_processor


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    """One message; Powertools passes ``lambda_context`` (its deadline bounds the idempotency lock).
    A bad input (the group's face work gone, a malformed message) is recorded under errors/ and
    acknowledged: retrying cannot help, and the DLQ alarm is for faults (issue 26, item 11)."""
    try:
        _record(record, lambda_context)
    except BadInputError as exc:
        permanent_failure(logger, STAGE, exc)


def _record(record: SQSRecord, lambda_context: Any) -> None:
    left = rate.time_left_s(lambda_context)
    if left is not None and left < rate.RESERVE_S:
        # Not a failure of this message: reported failed so SQS hands it out again, with no
        # error record, rather than started and cut off by the timeout with the whole batch.
        logger.info("little invocation time left: message left for redelivery",
                    extra={"message_id": record.message_id, "seconds_left": round(left, 1)})
        raise rate.NoTimeLeft(f"{left:.1f} s left, under the {rate.RESERVE_S:g} s reserve")
    try:
        doc = json.loads(record.body)
    except (TypeError, json.JSONDecodeError):
        doc = None  # parse_s3_message names the problem
    try:
        message = completion.parse_message(doc)
    except BadInputError as exc:
        record_bad_input(logger, STAGE, exc, subject=f"sqs:{record.message_id}", message_id=record.message_id)
        raise
    if isinstance(message, completion.FacesMessage):
        subject = completion.subject(message, people_bucket=Settings.from_env().people_bucket)
        with failures_recorded(logger, STAGE, record, subject):
            once(faces.analyze_tracks, faces.tracks_work(message.video_id, message.work_key), lambda_context,
                 key=faces.TRACKS_KEY)
        return
    # A snapshot's event still queued here from before alert_faces had its own queue.
    faces.snapshot_records(record, lambda_context, STAGE, logger)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry: settings checked once, then each face-work message on its own; only failed
    records are reported."""
    startup.check(STAGE)  # a bad setting: one error here, before any record (issue 26)
    # A processor per invocation: it holds the batch's state, and invocations may run side by side.
    return process_partial_response(event=event, record_handler=record_handler, processor=sqs_processor(),
                                    context=context)
