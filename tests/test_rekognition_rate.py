"""Rekognition within its quota (issue 26, item 6): every DetectFaces and SearchFacesByImage
call waits for its turn under this instance's share of rekognitionTps; group messages come
two at a time; an invocation with little time left reports the rest of its batch for
redelivery instead of starting work the timeout would cut off."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from vidsift import aws, contract
from vidsift.core import completion
from vidsift.local.dispatcher import Dispatcher, load_handler
from vidsift.local.stack import LocalStack
from vidsift.settings import DEFAULT_REKOGNITION_TPS, RateSettings
from vidsift.stages import rate
from vidsift.testing.localcheck import error_records


@dataclass
class FakeTime:
    """A clock that only moves when slept on: waits are counted, never raced."""

    now: float = 100.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_limiter_spaces_calls_at_its_rate() -> None:
    t = FakeTime()
    limiter = rate.RateLimiter(rate=2.0, clock=t.clock, sleep=t.sleep)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits == [0.0, 0.5, 0.5, 0.5, 0.5]  # the first at once, then one every 1/rate s
    assert t.now == pytest.approx(102.0)
    t.now += 10  # idle: the bucket refills up to its burst (1 call), no more
    assert [limiter.acquire() for _ in range(2)] == [0.0, 0.5]


def test_the_budget_is_shared_by_every_instance_that_may_run(monkeypatch: pytest.MonkeyPatch) -> None:
    stages = contract.load()["stages"]
    callers = sum(stages[s]["max_concurrency"] for s in rate.REKOGNITION_STAGES if s in stages)
    assert rate.instances() == callers >= stages["analyze_faces"]["max_concurrency"]
    monkeypatch.delenv("REKOGNITION_TPS", raising=False)
    assert rate.per_instance_tps() * callers == pytest.approx(DEFAULT_REKOGNITION_TPS) == pytest.approx(5.0)
    monkeypatch.setenv("REKOGNITION_TPS", "50")
    assert rate.per_instance_tps() * callers == pytest.approx(50.0)
    for bad in ("0", "-1", "fast"):
        monkeypatch.setenv("REKOGNITION_TPS", bad)
        with pytest.raises(Exception, match="REKOGNITION_TPS"):
            RateSettings.from_mapping(os.environ)


def test_group_messages_come_in_small_batches() -> None:
    spec = contract.stage("analyze_faces")
    assert spec["batch_size"] <= 2 and spec["timeout_s"] > 2 * rate.RESERVE_S


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The process's limiter replaced by one on a fake clock: its waits, one per call."""
    t = FakeTime()
    limiter = rate.RateLimiter(rate=0.5, clock=t.clock, sleep=t.sleep)
    waits: list[float] = []

    def acquire() -> float:
        waits.append(rate.RateLimiter.acquire(limiter))
        return waits[-1]

    monkeypatch.setattr(limiter, "acquire", acquire)
    monkeypatch.setattr(rate, "rekognition_limiter", lambda: limiter)
    yield waits


def test_detect_faces_and_searches_wait_their_turn(counted: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    import vidsift.stages.faces as analyze_faces  # the work moved from functions/analyze_faces.py
    from vidsift.core.events import ObjectRef
    from vidsift.core.matching import MatchSettings
    from vidsift.stages import known_faces

    calls: list[str] = []
    monkeypatch.setattr(aws, "detect_faces", lambda b, k: calls.append("detect") or {"FaceDetails": []})
    monkeypatch.setattr(aws, "collection_face_count", lambda c: 3)
    monkeypatch.setattr(aws, "search_faces_by_image", lambda *a: calls.append("search") or {"FaceMatches": []})
    monkeypatch.setattr(known_faces, "face_crops", lambda frame, boxes: [b"crop"] * len(boxes))
    monkeypatch.setattr(aws, "get_object_bytes", lambda b, k: b"frame")
    for i in range(3):
        analyze_faces._detect(ObjectRef("people", f"f{i}.jpg", 1, "e"))
    known_faces.match_faces("people", "f.jpg", [{"BoundingBox": {}}] * 2, MatchSettings("known", 90.0))
    assert calls == ["detect"] * 3 + ["search"] * 2
    assert counted == [0.0, 2.0, 2.0, 2.0, 2.0]  # 5 calls at 0.5 per second: 8 s of waiting, counted


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
    yield local_stack


@dataclass
class Context:
    """A Lambda context with a fixed amount of time left."""

    seconds_left: float
    function_name: str = "vidsift-local-analyze_faces"
    aws_request_id: str = "req-1"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:f"
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/f"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)


def group_event(video: str, n: int) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m-{i}", "receiptHandle": f"r-{i}", "attributes": {}, "messageAttributes": {},
                         "md5OfBody": "", "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                         "body": json.dumps(completion.FacesMessage(video,
                                                                    f"tracks/{video}/missing-{i}.json").to_json())}
                        for i in range(n)]}


def test_little_time_left_reports_the_batch_for_redelivery_not_as_errors(stack: LocalStack) -> None:
    handler = load_handler("analyze_faces")
    before = error_records(stack, "analyze_faces")
    answer = handler(group_event("late-video", 2), Context(seconds_left=rate.RESERVE_S - 1))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-1"}]}
    assert error_records(stack, "analyze_faces") == before  # nothing is wrong with them
    # With time enough the same messages are worked on (here: found to name no work, a bad
    # input each: recorded and acknowledged, not retried).
    answer = handler(group_event("late-video", 2), Context(seconds_left=100))
    assert answer == {"batchItemFailures": []}
    assert len(error_records(stack, "analyze_faces")) == len(before) + 2
