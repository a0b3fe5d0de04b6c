"""The chaos run (``make soak``, pytest -m slow): many videos of mixed lengths through the
local stack while faults are injected at random into every service, invocations are killed
mid-batch and keys are overwritten while they are processed. At the end every uploaded
version is in exactly one end state (tracked, or failed with its reason), no frame that was
not given up is without its row, no frame has two rows, and the sweeper finds nothing stalled.

Faults, each drawn from a seeded random generator (``VIDSIFT_CHAOS_SEED``, default 26):
S3 ``SlowDown`` (GetObject, HeadObject, PutObject, CopyObject), SQS ``InternalError`` on
sends, DynamoDB throttling (every operation of the tracking and idempotency tables), Firehose
``ServiceUnavailable``, the endpoint answering 503 / 500 / throttling, Rekognition 5xx and
throttling, and the invocation killed (LambdaKilled: no ``except Exception`` runs, its
messages come back after the function's timeout as in Lambda). botocore retries most of the
refusals within the call; the rest fail messages that SQS redelivers.

Figures go to docs/reliability.md; nothing here is tuned on them (the seed is not chosen).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from vidsift import aws
from vidsift.core import completion, ids
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.results import analytics_rows
from vidsift.local.stack import LocalStack
from vidsift.settings import Settings
from vidsift.stages import rate, sweeping
from vidsift.storage.progress import DynamoProgressStore
from vidsift.testing.faults import (
    DYNAMODB_THROTTLED,
    FIREHOSE_UNAVAILABLE,
    S3_SLOW_DOWN,
    SQS_UNAVAILABLE,
    LambdaKilled,
)
from vidsift.testing.samples import Segment, make_video

pytestmark = pytest.mark.slow

PHOTOS = ("astronaut", "coffee", "grace_hopper", "camera", "chelsea", "rocket")


class RandomRefuse:
    """Answer a random share of one client's requests (some operations) with an error
    response: botocore sees an overloaded service. Thread-safe, seeded."""

    def __init__(self, client: Any, response: tuple[int, dict[str, str], bytes], rate: float, rng: random.Random,
                 operations: tuple[str, ...]) -> None:
        from vidsift.testing.faults import Refuse

        self._refuse = Refuse(client, response, limit=10**9, operations=operations)
        self.rate, self.rng, self.lock, self.refused = rate, rng, threading.Lock(), 0
        self.client = client
        self._event = self._refuse._event

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        op = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        if op not in self._refuse.operations:
            return None
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            self.refused += 1
        return self._refuse(request, **kwargs)

    def __enter__(self) -> RandomRefuse:
        self.client.meta.events.register(self._event, self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister(self._event, self)


class ChaosDispatcher(Dispatcher):
    """Kills a share of invocations at a random AWS call inside the handler (LambdaKilled),
    and injects endpoint and Rekognition faults now and then, at random."""

    def __init__(self, *args: Any, rng: random.Random, kill_rate: float, lose_rate: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rng, self.kill_rate, self.lose_rate = rng, kill_rate, lose_rate
        self.lost_messages = 0
        self.killed: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.doomed: set[int] = set()  # threads whose invocation dies at its next AWS call

    def _receive(self, stage: str) -> list[dict[str, Any]]:
        """A frame's message lost now and then (deleted unseen: what a receive while the function
        is throttled does to a message on its last receive): only the sweeper can finish its video."""
        messages = super()._receive(stage)
        if stage != "detect_people":
            return messages
        kept = []
        for m in messages:
            with self.lock:
                lose = self.rng.random() < self.lose_rate
            if lose:
                aws.client("sqs").delete_message(QueueUrl=self.stack.queue_urls[stage],
                                                 ReceiptHandle=m["ReceiptHandle"])
                self.lost_messages += 1
            else:
                kept.append(m)
        return kept

    def _invoke(self, stage: str, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        with self.lock:
            doomed = self.rng.random() < self.kill_rate
            if self.rng.random() < 0.05:
                self.stack.sagemaker.faults.inject(self.rng.choice(["service_unavailable", "internal_failure",
                                                                    "throttling", "model_error"]), times=1)
                self.injected["endpoint"] += 1
            if self.rng.random() < 0.05:
                self.stack.rekognition.fail_next(1, self.rng.choice(["ThrottlingException", "InternalServerError"]))
                self.injected["rekognition"] += 1
        me = threading.get_ident()
        if doomed:
            with self.lock:
                self.doomed.add(me)
        try:
            super()._invoke(stage, messages)
        except LambdaKilled:
            # Lambda's view: the invocation ended without an answer; its messages come back
            # after the function's timeout (the dispatcher received them invisible that long).
            with self.lock:
                self.killed[stage] += 1
        finally:
            with self.lock:
                self.doomed.discard(me)

    def kill_hook(self, **kwargs: Any) -> None:
        me = threading.get_ident()
        with self.lock:
            if me not in self.doomed or self.rng.random() > 0.3:
                return
            self.doomed.discard(me)
        raise LambdaKilled("invocation killed by the chaos run")


def videos(folder: Path, rng: random.Random) -> list[Path]:
    """Templates of 3 s (one segment), 6 s and 9 s (two and three 3 s segments)."""
    out = []
    for i in range(9):
        seconds = (3, 6, 9)[i % 3]
        out.append(make_video(folder / f"chaos{i}.mp4", [Segment(rng.choice(PHOTOS), 1) for _ in range(seconds)],
                              fps=10, width=320, height=240, seed=100 + i))
    return out


def test_chaos_every_version_ends_in_one_state(local_stack: LocalStack, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    seed = int(os.environ.get("VIDSIFT_CHAOS_SEED", "26"))
    count = int(os.environ.get("VIDSIFT_CHAOS_VIDEOS", "100"))
    overwrites = max(1, count // 10)
    rng = random.Random(seed)
    monkeypatch.setenv("SEGMENT_SECONDS", "3")
    stack = local_stack
    assert Dispatcher(stack).run_until_idle(timeout_s=60)  # S3's test events
    templates = videos(tmp_path, rng)
    raw = stack.names.bucket("raw")
    s3 = aws.client("s3")
    uploaded: list[tuple[str, str, str]] = []  # (key, version, etag)

    def put(key: str, path: Path) -> None:
        resp = s3.put_object(Bucket=raw, Key=key, Body=path.read_bytes())
        uploaded.append((key, resp["VersionId"], resp["ETag"].strip('"')))

    keys = [f"uploads/chaos/cam{i % 9}/clip {i:03d}.mp4" for i in range(count)]
    for i, key in enumerate(keys):
        put(key, templates[i % len(templates)])
    dispatcher = ChaosDispatcher(stack, concurrency=4, rng=random.Random(seed + 1), kill_rate=0.08, lose_rate=0.01,
                                 timeouts={"split_frames": 15.0, "detect_people": 15.0, "track_people": 15.0,
                                           # over the 30 s analyze_faces keeps in reserve before it takes a
                                           # message (vidsift.stages.rate.RESERVE_S): at 15 s it took none
                                           "analyze_faces": 15.0 + rate.RESERVE_S})
    faults = [RandomRefuse(aws.client("s3"), S3_SLOW_DOWN, 0.03, random.Random(seed + 2),
                           ("GetObject", "HeadObject", "PutObject", "CopyObject")),
              RandomRefuse(aws.client("sqs"), SQS_UNAVAILABLE, 0.05, random.Random(seed + 3),
                           ("SendMessageBatch", "SendMessage")),
              RandomRefuse(aws.client("dynamodb"), DYNAMODB_THROTTLED, 0.05, random.Random(seed + 4),
                           ("UpdateItem", "GetItem", "BatchGetItem", "BatchWriteItem", "Query", "PutItem")),
              RandomRefuse(aws.client("firehose"), FIREHOSE_UNAVAILABLE, 0.05, random.Random(seed + 5),
                           ("PutRecordBatch",))]
    kill_events = ["before-call.s3", "before-call.dynamodb", "before-call.sqs", "before-call.firehose"]
    started = time.monotonic()
    done = threading.Event()
    result: dict[str, bool] = {}

    def run() -> None:
        result["idle"] = dispatcher.run_until_idle(timeout_s=1500)
        done.set()

    for f in faults:
        f.__enter__()
    for ev in kill_events:
        for svc in ("s3", "dynamodb", "sqs", "firehose"):
            if ev.endswith(svc):
                aws.client(svc).meta.events.register(ev, dispatcher.kill_hook)
    try:
        worker = threading.Thread(target=run, name="chaos-dispatcher")
        worker.start()
        # Keys overwritten while processing: a few seconds in, a tenth of them get a new version.
        time.sleep(3)
        for i in rng.sample(range(count), overwrites):
            put(keys[i], templates[(i + 4) % len(templates)])
        worker.join()
    finally:
        for f in faults:
            f.__exit__()
        for ev in kill_events:
            for svc in ("s3", "dynamodb", "sqs", "firehose"):
                if ev.endswith(svc):
                    aws.client(svc).meta.events.unregister(ev, dispatcher.kill_hook)
        stack.sagemaker.faults.clear()
        stack.rekognition.clear_faults()
    assert result.get("idle"), "the run did not drain its queues in time"
    # A sweep at the end (as `vidsift run` ends): the videos stalled by a lost message.
    config = sweeping.SweepConfig.from_settings(Settings.from_env())
    swept = sweeping.sweep(config, now=time.time() + config.stall_after_s + 1)
    assert Dispatcher(stack).run_until_idle(timeout_s=300)
    seconds = time.monotonic() - started

    table = stack.names.tracking_table
    states: Counter[str] = Counter()
    lost: list[str] = []
    gaps = 0
    people = defaultdict(set)
    record_ids: Counter[str] = Counter()
    resent = Counter()
    for r in analytics_rows(stack, "people"):
        record_ids[r["record_id"]] += 1
    by_frame: dict[tuple[str, int], set[str]] = defaultdict(set)
    for r in analytics_rows(stack, "people"):
        people[r["video_id"]].add(r["frame_index"])
        by_frame[(r["video_id"], r["frame_index"])].add(r["record_id"])
    resent["people"] = sum(n - 1 for n in record_ids.values())
    duplicated = [k for k, v in by_frame.items() if len(v) > 1]
    # A visit is one tracks row however often its face work was redelivered or replayed.
    by_track: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in analytics_rows(stack, "tracks"):
        by_track[(r["video_id"], r["track_id"])].add(r["record_id"])
    duplicated += [k for k, v in by_track.items() if len(v) > 1]
    seen_videos = set()
    for key, version, etag in uploaded:
        video = ids.video_id(raw, key, etag)
        if video in seen_videos:  # the same bytes written again: one video, one end state
            continue
        seen_videos.add(video)
        item = DynamoProgressStore(table).item(video)
        state = item.get("state", "none")
        states[state] += 1
        if state == completion.TRACKED:
            expected: set[int] = set()
            given_up: set[int] = set()
            for k in range(int(item["segments"])):
                seg = DynamoProgressStore(table).item(completion.segment_part(video, k))
                span = completion.span(seg)
                expected |= set(range(span[1], span[2] + 1)) if span else set()
                given_up |= completion.gaps(seg)
            gaps += len(given_up)
            if people[video] != expected - given_up:
                lost.append(f"{key}@{version}: rows {sorted(people[video])}, want {sorted(expected - given_up)}")
        elif state != completion.FAILED:
            lost.append(f"{key}@{version}: no end state ({item})")
    later = sweeping.sweep(config, now=time.time() + config.stall_after_s + 1)
    figures = {"seed": seed, "videos": count, "versions": len(uploaded), "distinct": len(seen_videos),
               "states": dict(states), "frames_given_up": gaps, "lost": len(lost), "duplicated": len(duplicated),
               "visits": len(by_track),
               "rows_resent_same_record_id": resent["people"], "stalled_at_end": len(later.stalled),
               "messages_lost": dispatcher.lost_messages, "swept_before_end": swept.as_dict(),
               "killed": dict(dispatcher.killed),
               "refused": {f.client.meta.service_model.service_id.hyphenize(): f.refused for f in faults}
               | dict(dispatcher.injected),
               "seconds": round(seconds, 1), "stats": {s: vars(st) for s, st in dispatcher.stats.items()}}
    with capsys.disabled():
        print(f"\nchaos: {figures}")
    assert lost == [], lost[:5]
    assert duplicated == []
    assert states.get("none", 0) == 0 and sum(states.values()) == len(seen_videos)
    assert later.stalled == []
    assert len(swept.finished) >= (1 if dispatcher.lost_messages else 0) and swept.failed == []
    assert sum(dispatcher.killed.values()) > 0 and all(f.refused for f in faults)  # the faults did happen
    assert dispatcher.stats["analyze_faces"].succeeded > 0 and by_track  # the face stage ran under the chaos too
