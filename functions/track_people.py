"""Stage 3: a video's frames are all detected; follow each person through it.

Two kinds of message arrive on this queue (vidsift.core.completion): a segment is ready to
track (sent by split_frames or detect_people, whichever completed the video's frames), and
the video's segments are all tracked (sent by this function itself). The work is in
vidsift.stages.tracking.
"""

from __future__ import annotations

import json
from typing import Any

# The tracker (norfair, with SciPy: about 1 s of imports) loads with the function, in Lambda's
# init phase, rather than on its first message; vidsift.core.tracking imports it where used.
import norfair  # noqa: F401
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidsift.core import completion
from vidsift.core.errors import BadInputError
from vidsift.logs import get_logger
from vidsift.stages import startup, tracking
from vidsift.stages.runtime import failures_recorded, once, permanent_failure, record_bad_input, sqs_processor

STAGE = "track_people"
logger = get_logger(STAGE)
#: A segment or video is tracked once per generation: a frame recovered from the DLQ after
#: its video was tracked without it makes new work (vidsift.core.completion.generation).
SEGMENT_KEY = "[video_id, segment, generation]"
VIDEO_KEY = "[video_id, generation]"


def _message(record: SQSRecord) -> completion.SegmentMessage | completion.VideoMessage:
    try:
        doc = json.loads(record.body)
    except (TypeError, json.JSONDecodeError) as exc:
        raise BadInputError("SQS message", f"not JSON ({exc})") from exc
    message = completion.parse_message(doc)
    if not isinstance(message, (completion.SegmentMessage, completion.VideoMessage)):
        raise BadInputError("SQS message", "not a tracking message (expected "
                                           f"{completion.SEGMENT_MESSAGE} or {completion.VIDEO_MESSAGE})")
    return message


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    """One message; Powertools passes ``lambda_context`` (its deadline bounds the idempotency lock)."""
    try:
        message = _message(record)
    except BadInputError as exc:  # permanent: recorded once, acknowledged, counted (not the DLQ)
        record_bad_input(logger, STAGE, exc, subject=f"sqs:{record.message_id}", message_id=record.message_id)
        permanent_failure(logger, STAGE, exc)
        return
    with failures_recorded(logger, STAGE, record, completion.subject(message, people_bucket="")):
        if isinstance(message, completion.SegmentMessage):
            result = once(tracking.track_segment_work, {"video_id": message.video_id, "segment": message.segment,
                                                           "generation": message.generation},
                          lambda_context, key=SEGMENT_KEY)
            logger.info("segment tracked", extra=result)
        else:
            once(tracking.track_video_work, {"video_id": message.video_id, "generation": message.generation},
                 lambda_context, key=VIDEO_KEY)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry: settings checked once, then each segment or video message on its own; only
    failed records are reported."""
    startup.check(STAGE)  # a bad setting: one error here, before any record (issue 26)
    # A processor per invocation: it holds the batch's state, and invocations may run side by side.
    return process_partial_response(event=event, record_handler=record_handler, processor=sqs_processor(),
                                    context=context)
