"""Stage 5, the alert fast lane's face step: the edge's snapshots, on a queue of their own.

detect_people copies a snapshot that shows people to the people bucket (under the
contract's source_prefix of this stage, vidsift.core.snapshots); the bucket notifies this
queue. Each snapshot gets one DetectFaces (and a known-faces search per face), and its face
alerts, but no row: its clip is processed in full later and is the record. It used to share
analyze_faces' queue, where a face alert could wait behind ten groups of tracks; now it
waits for nobody (no batching window) and has its own instances, within the same
rekognitionTps budget (vidsift/stages/rate.py). The work is the faces stage's
(:func:`vidsift.stages.faces.snapshot_records`, which runs ``analyze_frame`` once per copy),
keyed the same way as when analyze_faces did it, so a replay is not analysed or alerted on again."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidsift.core.errors import BadInputError
from vidsift.logs import get_logger
from vidsift.stages import rate, startup
from vidsift.stages.faces import snapshot_records
from vidsift.stages.runtime import permanent_failure, sqs_processor

STAGE = "alert_faces"
logger = get_logger(STAGE)


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    """One snapshot's face message: its failure is this record's alone (reported, not the
    batch's)."""
    left = rate.time_left_s(lambda_context)
    if left is not None and left < rate.SNAPSHOT_RESERVE_S:
        logger.info("little invocation time left: snapshot left for redelivery",
                    extra={"message_id": record.message_id, "seconds_left": round(left, 1)})
        raise rate.NoTimeLeft(f"{left:.1f} s left, under the {rate.SNAPSHOT_RESERVE_S:g} s reserve")
    try:
        snapshot_records(record, lambda_context, STAGE, logger)
    except BadInputError as exc:  # recorded under errors/: acknowledged, not retried (issue 26, item 11)
        permanent_failure(logger, STAGE, exc)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry: settings checked once, then each snapshot record on its own (partial batch
    response)."""
    startup.check(STAGE)  # a bad setting: one error here, before any record (issue 26)
    return process_partial_response(event=event, record_handler=record_handler, processor=sqs_processor(),
                                    context=context)
