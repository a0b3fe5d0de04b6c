"""Scheduled: finish or fail the videos whose tracking progress stalled (a message lost
without its last receive, a SendMessage that never happened). The work is in
vidsift.stages.sweeping."""

from __future__ import annotations

from typing import Any

from vidsift.logs import get_logger
from vidsift.settings import Settings
from vidsift.stages import sweeping

logger = get_logger(sweeping.STAGE)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Scheduled entry: every video whose progress stalled is finished or failed, so none ends
    silently."""
    result = sweeping.sweep(sweeping.SweepConfig.from_settings(Settings.from_env()))
    logger.info("sweep done", extra=result.as_dict())
    return result.as_dict()
