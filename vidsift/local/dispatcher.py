"""Plays the part of Lambda's SQS event source mapping for the local stack.

It polls each stage's queue, hands the handler a real SQS event (batch size from the
contract, as serverless.yml configures it), deletes what succeeded and leaves the
reported failures to come back after the visibility timeout and, past their receive
count, to be moved to the DLQ by the queue's redrive policy, as in AWS.
"""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vidsift import aws, contract
from vidsift.local.stack import REGION, LocalStack

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LocalContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    timeout_s: int
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(stage: str) -> Handler:
    """The handler that serverless.yml names for this stage (e.g. functions/split_frames.handler)."""
    module_path, attr = contract.stage(stage)["handler"].rsplit(".", 1)
    return getattr(importlib.import_module(module_path.replace("/", ".")), attr)


@dataclass
class StageStats:
    invocations: int = 0
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    #: Wall time spent inside the handler: what Lambda would bill as duration.
    seconds: float = 0.0


@dataclass
class Dispatcher:
    stack: LocalStack
    handlers: dict[str, Handler] = field(default_factory=dict)
    stats: dict[str, StageStats] = field(default_factory=lambda: {s: StageStats() for s in contract.STAGES})
    on_batch: Callable[[str, StageStats], None] | None = None

    def __post_init__(self) -> None:
        for stage in contract.STAGES:
            self.handlers.setdefault(stage, load_handler(stage))

    def _receive(self, stage: str) -> list[dict[str, Any]]:
        sqs = aws.client("sqs")
        want = contract.stage(stage)["batch_size"]
        messages: list[dict[str, Any]] = []
        while len(messages) < want:
            got = sqs.receive_message(QueueUrl=self.stack.queue_urls[stage], WaitTimeSeconds=0,
                                      MaxNumberOfMessages=min(10, want - len(messages)),
                                      AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        return messages

    def _event(self, stage: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        arn = f"arn:aws:sqs:{REGION}:{self.stack.names.account}:{self.stack.names.queue(stage)}"
        return {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": arn,
            "awsRegion": REGION,
        } for m in messages]}

    def poll(self, stage: str) -> int:
        """One invocation with up to a batch of messages; returns how many were handled."""
        messages = self._receive(stage)
        if not messages:
            return 0
        stats = self.stats[stage]
        stats.invocations += 1
        stats.received += len(messages)
        ctx = LocalContext(function_name=f"{self.stack.names.prefix}-{stage}",
                           timeout_s=contract.stage(stage)["timeout_s"])
        started = time.monotonic()
        try:
            response = self.handlers[stage](self._event(stage, messages), ctx) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # an invocation error fails the whole batch, as in Lambda
            failed = {m["MessageId"] for m in messages}
        stats.seconds += time.monotonic() - started
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            aws.client("sqs").delete_message_batch(QueueUrl=self.stack.queue_urls[stage], Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        stats.succeeded += len(done)
        stats.failed += len(failed)
        if self.on_batch:
            self.on_batch(stage, stats)
        return len(messages)

    def in_flight(self) -> int:
        sqs = aws.client("sqs")
        total = 0
        for url in self.stack.queue_urls.values():
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            total += int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        return total

    def run_until_idle(self, timeout_s: float = 3600, idle_sleep_s: float = 0.2) -> bool:
        """Drain every queue (later stages first, so frames flow on as soon as they exist).
        Returns False if the timeout came first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            handled = sum(self.poll(stage) for stage in reversed(contract.STAGES))
            if handled:
                continue
            if self.in_flight() == 0:
                return True
            time.sleep(idle_sleep_s)
        return False
