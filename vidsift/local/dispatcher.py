"""Plays the part of Lambda's SQS event source mapping for the local stack.

It polls each stage's queue, hands the handler a real SQS event (batch size from the
contract, as serverless.yml configures it), deletes what succeeded and leaves the
reported failures to come back after the visibility timeout and, past their receive
count, to be moved to the DLQ by the queue's redrive policy, as in AWS.

Like Lambda, it may run several invocations at once (``concurrency``): each stage up to its
contract ``max_concurrency``, all stages together up to ``concurrency``. Received messages
stay invisible for the function's timeout (AWS requires the queue's visibility timeout to
cover it), so a slow invocation's messages are not handed to a second one; the failures a
handler reports are made visible again after the queue's short local visibility timeout.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from vidsift import aws, contract
from vidsift.local.moto_process import QUEUE_COUNTS_PATH
from vidsift.local.stack import REGION, LocalStack

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

#: Whose role the AWS calls made now would run under in AWS: (stage, "handler") around the
#: handler, (stage, "event source mapping") around the receives and deletes Lambda's poller
#: makes with the function's role. Read by vidsift.testing.calls (tests/test_roles.py).
acting_as: ContextVar[tuple[str, str] | None] = ContextVar("vidsift_acting_as", default=None)


@contextmanager
def _acting_as(stage: str, part: str) -> Iterator[None]:
    token = acting_as.set((stage, part))
    try:
        yield
    finally:
        acting_as.reset(token)


@dataclass
class LocalContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    timeout_s: float
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
        """What is left of the invocation's timeout: handlers stop taking work before Lambda would kill them."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(stage: str) -> Handler:
    """The handler that serverless.yml names for this stage (e.g. functions/split_frames.handler)."""
    module_path, attr = contract.function(stage)["handler"].rsplit(".", 1)
    return getattr(importlib.import_module(module_path.replace("/", ".")), attr)


def invoke(prefix: str, function: str, event: Any) -> Any:
    """A function no queue feeds (contract ``functions``: recount), as ``aws lambda invoke``
    runs it: its handler with a Lambda-like context, its AWS calls made as that function
    (acting_as: tests/test_roles.py checks them against its role). ``prefix``: the stack's."""
    ctx = LocalContext(function_name=f"{prefix}-{function}", timeout_s=float(contract.function(function)["timeout_s"]))
    with _acting_as(function, "handler"):
        return load_handler(function)(event, ctx)


def preload_handlers() -> None:
    """Start importing every stage's handler module, each on a thread of its own, and return:
    a run calls this before its local stack starts, whose start-up mostly waits (on moto's
    process, on HTTP round trips), so the imports (about 2 s of CPU, half of it the tracker's)
    fill that wait instead of the first stages'. A Dispatcher made later finds the modules
    imported, or waits for the import under way (Python's import lock)."""

    def load(stage: str) -> None:
        with contextlib.suppress(Exception):  # a Dispatcher loading the stage raises the same error
            load_handler(stage)

    for stage in contract.STAGES:
        threading.Thread(target=load, args=(stage,), name=f"preload-{stage}", daemon=True).start()


@dataclass
class StageStats:
    """What one stage did during a local run (invocations, messages, failures, handler time), for
    the run's summary and its cost estimate, which bills Lambda by duration."""

    invocations: int = 0
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    #: Wall time spent inside the handler: what Lambda would bill as duration.
    seconds: float = 0.0


@dataclass
class Dispatcher:
    """Plays Lambda's SQS event source mapping on the local stack: polls each stage's queue,
    invokes the real handler with a real SQS event and deletes only what the handler did not
    report failed, so the handlers run unchanged and retries, visibility timeouts and DLQs
    behave as in the cloud."""

    stack: LocalStack
    handlers: dict[str, Handler] = field(default_factory=dict)
    stats: dict[str, StageStats] = field(default_factory=lambda: {s: StageStats() for s in contract.STAGES})
    on_batch: Callable[[str, StageStats], None] | None = None
    #: Invocations at once over all stages; 1 runs them one after another.
    concurrency: int = 1
    #: Function timeouts (seconds) per stage instead of the contract's, e.g. to test what
    #: happens to an invocation that runs out of time.
    timeouts: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _loading: dict[str, Future[Handler]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        # Each stage's module loads on a thread of its own, as a Lambda container initialises
        # apart from the others: a stage's heavy imports (track_people's tracker, about 1 s)
        # happen while the stages before it work, not when its first message arrives, and
        # never hold up another stage's. A stage's first invocation waits for its module (and
        # raises its import error, if any).
        missing = [stage for stage in contract.STAGES if stage not in self.handlers]
        if missing:
            loader = ThreadPoolExecutor(max_workers=len(missing), thread_name_prefix="load-handler")
            self._loading = {stage: loader.submit(load_handler, stage) for stage in missing}
            loader.shutdown(wait=False)

    def handler(self, stage: str) -> Handler:
        """The stage's handler, imported once (in the background, at start) as a cold start would."""
        if stage not in self.handlers:
            self.handlers[stage] = self._loading[stage].result()
        return self.handlers[stage]

    def timeout_s(self, stage: str) -> float:
        """The stage's function timeout: the contract's, unless a test shortened it to see what a timeout does."""
        return float(self.timeouts.get(stage, contract.stage(stage)["timeout_s"]))

    def _receive(self, stage: str) -> list[dict[str, Any]]:
        sqs = aws.client("sqs")
        want = contract.stage(stage)["batch_size"]
        # Invisible while the function may still run on them, plus the local retry delay.
        hide_s = math.ceil(self.timeout_s(stage)) + self.stack.visibility_timeout_s
        messages: list[dict[str, Any]] = []
        while len(messages) < want:
            with _acting_as(stage, "event source mapping"):
                got = sqs.receive_message(QueueUrl=self.stack.queue_urls[stage], WaitTimeSeconds=0,
                                          MaxNumberOfMessages=min(10, want - len(messages)), VisibilityTimeout=hide_s,
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
        if messages:
            self._invoke(stage, messages)
        return len(messages)

    def _invoke(self, stage: str, messages: list[dict[str, Any]]) -> None:
        handler = self.handler(stage)  # a module that cannot load is a bug to surface, not a failed batch
        ctx = LocalContext(function_name=f"{self.stack.names.prefix}-{stage}", timeout_s=self.timeout_s(stage))
        started = time.monotonic()
        try:
            with _acting_as(stage, "handler"):
                response = handler(self._event(stage, messages), ctx) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # an invocation error fails the whole batch, as in Lambda
            failed = {m["MessageId"] for m in messages}
        seconds = time.monotonic() - started
        sqs, url = aws.client("sqs"), self.stack.queue_urls[stage]
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            with _acting_as(stage, "event source mapping"):
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        retry = [m for m in messages if m["MessageId"] in failed]
        # Back after the queue's own visibility timeout, as if received with it: a local stand-in
        # for the timeout running out (Lambda's poller makes no such call), so no role's call.
        if retry:
            back_s = self.stack.visibility_timeout_s
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": back_s}
                for i, m in enumerate(retry)])
        with self._lock:
            stats = self.stats[stage]
            stats.invocations += 1
            stats.received += len(messages)
            stats.seconds += seconds
            stats.succeeded += len(done)
            stats.failed += len(retry)
            if self.on_batch:
                self.on_batch(stage, stats)

    def queue_counts(self) -> dict[str, tuple[int, int, int]]:
        """Each stage queue's messages (not visible, delayed, visible, as GetQueueAttributes
        counts them), all queues in one request to the local moto
        (vidsift.local.moto_process.QUEUE_COUNTS_PATH): the concurrent loop asks at every turn
        which queues hold visible messages, and a ReceiveMessage to each of the five queues
        (nearly all of them empty) cost a botocore call and a moto request each. The answer
        is the stack's own bookkeeping, not a call any function's role makes."""
        stages = list(self.stack.queue_urls)
        request = urllib.request.Request(self.stack.endpoint_url + QUEUE_COUNTS_PATH, method="POST",
                                         data=json.dumps({"urls": [self.stack.queue_urls[s] for s in stages]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            counts = json.loads(resp.read())["counts"]
        return {stage: (int(c[0]), int(c[1]), int(c[2])) for stage, c in zip(stages, counts, strict=True)}

    def in_flight(self) -> int:
        """Messages still to be handled in any stage queue: 0 only when every queue is empty.

        A failed message turns from invisible to visible by itself, so counting both in one
        call can miss it: counted as not yet visible, then as no longer invisible (SQS and moto
        compute the counts one after the other). So the invisible and delayed ones are counted
        first, in their own call, and the visible ones after: a message that turns visible in
        between is then counted once or twice, never zero times.
        """
        sqs = aws.client("sqs")
        total = 0
        for url in self.stack.queue_urls.values():
            for names in (["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
                          ["ApproximateNumberOfMessages"]):
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
                total += sum(int(attrs.get(n, 0)) for n in names)
        return total

    def run_until_idle(self, timeout_s: float = 3600, idle_sleep_s: float = 0.2) -> bool:
        """Drain every queue (later stages first, so frames flow on as soon as they exist).
        Returns False if the timeout came first."""
        if self.concurrency > 1:
            return self._run_concurrently(timeout_s, idle_sleep_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            handled = sum(self.poll(stage) for stage in reversed(contract.STAGES))
            if handled:
                continue
            if self.in_flight() == 0:
                return True
            time.sleep(idle_sleep_s)
        return False

    def _run_concurrently(self, timeout_s: float, idle_sleep_s: float) -> bool:
        """Receive on this thread, invoke on a pool: a stage takes a free slot while it is under
        its max_concurrency and the total is under ``concurrency``."""
        deadline = time.monotonic() + timeout_s
        running: dict[Future[None], str] = {}
        per_stage: Counter[str] = Counter()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="invoke") as pool:
            while time.monotonic() < deadline:
                started = 0
                # Only the queues holding visible messages are received from: one request for
                # all of them, instead of an empty ReceiveMessage per idle queue at every turn.
                waiting = ({s for s, c in self.queue_counts().items() if c[2]}
                           if len(running) < self.concurrency else set())
                for stage in reversed(contract.STAGES):
                    if stage not in waiting:
                        continue
                    cap = contract.stage(stage)["max_concurrency"]
                    while len(running) < self.concurrency and per_stage[stage] < cap:
                        messages = self._receive(stage)
                        if not messages:
                            break
                        running[pool.submit(self._invoke, stage, messages)] = stage
                        per_stage[stage] += 1
                        started += 1
                finished = [f for f in running if f.done()]
                for fut in finished:
                    per_stage[running.pop(fut)] -= 1
                    fut.result()  # _invoke catches what a handler raises; anything else is a bug to surface
                if started or finished:
                    continue
                if running:
                    wait(running, timeout=idle_sleep_s, return_when=FIRST_COMPLETED)
                elif self.in_flight() == 0:
                    return True
                else:
                    time.sleep(idle_sleep_s)
        return False
