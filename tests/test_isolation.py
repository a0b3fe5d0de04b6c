"""What keeps tests that share one local stack apart, and the dispatcher's idle check.

Each test of a module shares the module's stack; conftest's ``_settled_stack`` drops
whatever a test left in its queues (in flight included) and any fault still queued in a
model service, so the next test starts clean. The two ordered tests below prove it: the
first leaves a mess, the second must see none of it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from vidsift import aws, contract
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.stack import LocalStack


def test_a_test_leaves_messages_and_faults_behind(local_stack: LocalStack) -> None:
    local_stack.settle()  # S3's test events from creating the notifications
    sqs = aws.client("sqs")
    for url in (local_stack.queue_urls["detect_people"], local_stack.dlq_urls["analyze_faces"],
                local_stack.alert_queue_url):
        sqs.send_message(QueueUrl=url, MessageBody='{"left": "behind"}')
    in_flight = local_stack.queue_urls["split_frames"]
    sqs.send_message(QueueUrl=in_flight, MessageBody='{"left": "in flight"}')
    assert sqs.receive_message(QueueUrl=in_flight, VisibilityTimeout=600).get("Messages")
    local_stack.sagemaker.faults.inject("internal_failure", times=3)
    local_stack.rekognition.fail_next(3, "InternalServerError")
    assert sum(local_stack.queued().values()) == 4


def test_the_next_test_sees_none_of_it(local_stack: LocalStack) -> None:
    assert local_stack.queued() and not any(local_stack.queued().values())
    assert len(local_stack.sagemaker.faults) == 0 and local_stack.rekognition.pending_faults == 0
    assert Dispatcher(local_stack).in_flight() == 0


class _TurningVisible:
    """An SQS client whose one message becomes visible between two counts it computes, in the
    order SQS (and moto) computes them within one GetQueueAttributes call."""

    ORDER = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed")

    def __init__(self) -> None:
        self.visible = False

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        out: dict[str, str] = {}
        for name in (n for n in self.ORDER if n in AttributeNames):
            if name == "ApproximateNumberOfMessages":
                out[name] = "1" if self.visible else "0"
            elif name == "ApproximateNumberOfMessagesNotVisible":
                out[name] = "0" if self.visible else "1"
            else:
                out[name] = "0"
            self.visible = True  # the visibility timeout runs out right here
        return {"Attributes": out}


def test_in_flight_never_misses_a_message_turning_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher said "idle" while a failed message was turning visible again, so a run
    ended before it reached the DLQ (a later test then found it there)."""
    fake = _TurningVisible()
    monkeypatch.setattr(aws, "client", lambda service: fake)
    stack = SimpleNamespace(queue_urls={"detect_people": "q"})
    d = Dispatcher(stack, handlers={s: (lambda e, c: {}) for s in contract.STAGES})  # type: ignore[arg-type]
    assert d.in_flight() >= 1
