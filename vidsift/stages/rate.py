"""Rekognition within its quota: a client-side rate limit, and knowing when to stop.

Rekognition's transactions-per-second quotas are per account and region, per API, and as
low as 5 in smaller regions (DetectFaces' default is 5-50 depending on the region:
read *Service Quotas > Amazon Rekognition* before a large run). A throttled call is
retried by botocore with backoff, but a group of tracks is all-or-nothing, so a throttle
late in a group pays every call again. Instead each function instance spends at most its
share of ``REKOGNITION_TPS`` (the stack's ``rekognitionTps``: the budget vidsift may use
of the account's quota, default 5):

    per instance = REKOGNITION_TPS / (max_concurrency of every stage that calls Rekognition)

so analyze_faces' 5 instances and alert_faces' 2 (vidsift/contract.json) together never
exceed it, however many are running. DetectFaces and SearchFacesByImage share the budget
(each has its own quota; counting both against one is conservative).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vidsift import contract
from vidsift.settings import Settings

#: Stages whose instances call Rekognition, and so share the budget.
REKOGNITION_STAGES = ("analyze_faces", "alert_faces")


def instances() -> int:
    """How many function instances may call Rekognition at once (the budget's divisor)."""
    stages = contract.load()["stages"]
    return sum(int(stages[s]["max_concurrency"]) for s in REKOGNITION_STAGES if s in stages)


def per_instance_tps(total: float | None = None) -> float:
    """This instance's share of ``total`` (default: the settings' REKOGNITION_TPS)."""
    return (Settings.from_env().rate.rekognition_tps if total is None else total) / instances()


@dataclass
class RateLimiter:
    """At most ``rate`` calls per second from this process, ``burst`` at once (a token
    bucket). Thread-safe: a group's DetectFaces calls run on a few threads. The clock and
    sleep are given, so tests count waits instead of racing the wall clock."""

    rate: float
    burst: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _tokens: float = field(init=False, default=0.0)
    _at: float | None = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def acquire(self) -> float:
        """Wait for a call's turn; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            if self._at is None:
                self._tokens, self._at = self.burst, now
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait:
            self.sleep(wait)
        return wait


_limiters: dict[float, RateLimiter] = {}
_limiters_lock = threading.Lock()


def rekognition_limiter() -> RateLimiter:
    """This process's limiter, at its share of REKOGNITION_TPS (one per distinct setting)."""
    rate = per_instance_tps()
    with _limiters_lock:
        if rate not in _limiters:
            _limiters[rate] = RateLimiter(rate=rate)
        return _limiters[rate]


def limited(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` waiting its turn under the Rekognition budget first."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        rekognition_limiter().acquire()
        return call(*args, **kwargs)
    return wrapper


#: Seconds an invocation keeps in hand: a group started with less may not finish (a few
#: DetectFaces, searches and Firehose writes, each possibly retried), and an invocation that
#: times out fails its whole batch. 30 s of analyze_faces' 120.
RESERVE_S = 30.0
#: The same for one snapshot (one DetectFaces, a search per face, an alert): 10 s of alert_faces' 60.
SNAPSHOT_RESERVE_S = 10.0


class NoTimeLeft(RuntimeError):
    """Too little of the invocation left to start a message: it is redelivered, not failed."""


def time_left_s(context: Any) -> float | None:
    """Seconds before the invocation's deadline; None without a Lambda context."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return None if remaining is None else remaining() / 1000.0
