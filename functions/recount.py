"""Recount: the lines and zones of past videos, counted again from their stored tracks.

Invoked directly, not from a queue (``aws lambda invoke --function-name vidsift-<stage>-recount
--cli-binary-format raw-in-base64-out --payload '{"since": "2026-12-01", "until": "2026-12-07",
"cameras": ["door"]}' out.json``), after the camera layout changed (``vidsift cameras put``):
it reads the stored layout and the days' tracks rows from the analytics bucket and rewrites
each video's crossings and zone_visits objects. Nothing is detected again. ``until`` defaults to
today (UTC), ``cameras`` to all; at most contract functions.recount.max_days days at once. The
work is in vidsift.stages.counting; a bad request fails the invocation with its reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vidsift.core.errors import BadInputError
from vidsift.core.layout import LayoutError
from vidsift.logs import get_logger
from vidsift.settings import Settings
from vidsift.stages import counting

STAGE = "recount"
logger = get_logger(STAGE)


def _request(event: Any) -> tuple[str, str | None, list[str] | None]:
    if not isinstance(event, dict) or not isinstance(event.get("since"), str):
        raise BadInputError("recount request", 'expected {"since": "YYYY-MM-DD", "until"?: ..., "cameras"?: [...]}')
    until, cameras = event.get("until"), event.get("cameras")
    if until is not None and not isinstance(until, str):
        raise BadInputError("recount request", "until must be a YYYY-MM-DD date")
    if cameras is not None and not (isinstance(cameras, list) and all(isinstance(c, str) for c in cameras)):
        raise BadInputError("recount request", "cameras must be a list of camera ids")
    return event["since"], until, cameras


@logger.inject_lambda_context
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Direct invocation: the named days (and cameras) counted again against the stored camera
    layout."""
    since, until, cameras = _request(event)
    try:
        return counting.recount_days(Settings.from_env().analytics_bucket, since, until, cameras,
                                     datetime.now(UTC).date())
    except (ValueError, LayoutError) as exc:
        if isinstance(exc, BadInputError):
            raise
        raise BadInputError("recount request", str(exc)) from exc
