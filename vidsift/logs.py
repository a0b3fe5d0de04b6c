"""Loggers: JSON in Lambda (CloudWatch Logs Insights can query it), readable lines locally.

Powertools' Logger does the structured part; locally we only swap its formatter so a
person watching ``vidsift run`` reads sentences, not JSON.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

_STANDARD = {"level", "location", "message", "timestamp", "service", "sampling_rate", "xray_trace_id",
             "cold_start", "function_name", "function_memory_size", "function_arn", "function_request_id"}
_EXCEPTION = {"exception", "exception_name", "stack_trace"}


class ReadableFormatter(LambdaPowertoolsFormatter):
    """``HH:MM:SS LEVEL service: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = json.loads(super().format(record))
        extras = " ".join(f"{k}={v}" for k, v in data.items() if k not in _STANDARD | _EXCEPTION)
        when = self.formatTime(record, "%H:%M:%S")
        line = f"{when} {record.levelname:<7} {data.get('service')}: {data.get('message')}"
        if extras:
            line += f"  [{extras}]"
        if "exception" in data:
            line += f"\n{data['exception']}"
        return line


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged (not when the logger was made),
    so local log lines stay off stdout, where ``vidsift run``'s table goes into a pipe."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def in_lambda() -> bool:
    """Whether this process is a Lambda function (the platform sets its name): JSON logs there."""
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def function_name(default: str = "test-func") -> str:
    """The Lambda function's name as the platform gives it, with Powertools' own default
    outside Lambda: the first part of every idempotency record id (vidsift.stages.runtime).
    A platform variable, not a setting, so it is read here beside ``in_lambda``."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME", default)


def get_logger(service: str) -> Logger:
    """The stage's logger: JSON lines in Lambda (or VIDSIFT_LOG_FORMAT=json), readable lines on
    stderr locally, so stdout stays data."""
    if in_lambda() or os.environ.get("VIDSIFT_LOG_FORMAT") == "json":
        return Logger(service=service)
    return Logger(service=service, logger_formatter=ReadableFormatter(), logger_handler=StderrHandler())
