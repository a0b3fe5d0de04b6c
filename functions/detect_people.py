"""Stage 2: frames arrived (and the edge's alert snapshots, the alert fast lane); detect the
people in the whole batch at once. The work is in vidsift.stages.detecting: one endpoint
call serves every message of the batch, so the service runs first (``detecting.run``) and
this handler then reports each message from its outcome: a bad input recorded and
acknowledged (its frames given up for tracking at once), a fault retried (its frames given
up on the last receive before the DLQ), a snapshot's alert done once per object version."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidsift.core.errors import BadInputError
from vidsift.settings import Settings
from vidsift.stages import detecting, startup
from vidsift.stages.detecting import STAGE, Batch, logger
from vidsift.stages.runtime import (
    failures_recorded,
    once,
    permanent_failure,
    record_bad_input,
    record_gave_up,
    sqs_processor,
)


def make_record_handler(batch: Batch, context: Any, settings: Settings):
    """The per-message reporter over the batch's outcome (Powertools calls it per record)."""
    def record_handler(record: SQSRecord) -> None:
        refs = batch.refs.get(record.message_id, [])
        try:
            handle(record)
        except BadInputError as exc:  # recorded under errors/ by handle: acknowledged, not retried
            detecting.give_up_now(settings, refs)
            permanent_failure(logger, STAGE, exc)
        except Exception:
            detecting.give_up_on_last_receive(settings, int(record.attributes.approximate_receive_count or 0), refs)
            raise

    def handle(record: SQSRecord) -> None:
        if record.message_id in batch.errors:
            exc = batch.errors[record.message_id]
            if isinstance(exc, BadInputError):
                subject = f"sqs:{record.message_id}" if exc.what == "SQS message" else exc.what
                record_bad_input(logger, STAGE, exc, subject=subject, message_id=record.message_id)
            else:  # the endpoint kept failing
                record_gave_up(logger, STAGE, exc, record, [r.uri for r in batch.refs.get(record.message_id, [])])
            raise exc
        if record.message_id in batch.failures:
            subject, exc = batch.failures[record.message_id]
            with failures_recorded(logger, STAGE, record, subject):
                raise exc
        for ref, work, key in detecting.snapshot_work(batch, record.message_id):
            with failures_recorded(logger, STAGE, record, ref.uri):
                once(detecting.finish_snapshot_work, work, context, key=key)

    return record_handler


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry: the whole batch goes to the endpoint in one call
    (vidsift.stages.detecting), then each message is reported on its own."""
    startup.check(STAGE)  # a bad setting: one error here, before any record (issue 26)
    settings = Settings.from_env()
    batch = detecting.run(event, settings)
    return process_partial_response(event=event, record_handler=make_record_handler(batch, context, settings),
                                    processor=sqs_processor(), context=context)
