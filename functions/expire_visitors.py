"""Scheduled, once a day (visitors=true only): visitors not seen for VISITOR_RETENTION_DAYS are
deleted from the visitors collection with their face copies; their ids are never reused and
their rows stay (vidsift.stages.visitor_admin.expire). An audit record per visitor goes to
visitor-audit/ in the analytics bucket."""

from __future__ import annotations

from typing import Any

from vidsift.logs import get_logger
from vidsift.settings import Settings
from vidsift.stages import visitor_admin

logger = get_logger("expire_visitors")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Scheduled entry: visitors past their retention are forgotten (opt-in visitors only;
    nothing when off)."""
    settings = Settings.from_env().visitors
    if not settings.enabled:
        return {"expired": []}
    store = visitor_admin.CloudStore(str(settings.table), str(settings.collection),
                                     Settings.from_env().analytics_bucket)
    expired = visitor_admin.expire(store, settings.retention_days)
    logger.info("visitors expired", extra={"expired": expired, "retention_days": settings.retention_days})
    return {"expired": expired}
