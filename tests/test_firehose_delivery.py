"""Firehose partial failures: exactly the failed records are sent again, none twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from vidsift import aws
from vidsift.local.results import analytics_rows
from vidsift.local.stack import LocalStack


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(with_models=False) as s:
        yield s


class PartialFailure:
    """Makes Firehose refuse some records of the next calls, the way the real service does
    under load: those records are not delivered and come back with an ErrorCode."""

    def __init__(self, client: Any, fail_first: int, calls: int) -> None:
        self.client, self.fail_first, self.calls = client, fail_first, calls
        self.dropped: list[list[bytes]] = []

    def before(self, params: dict[str, Any], **_: Any) -> None:
        if self.calls <= 0:
            return
        records = params["Records"]
        self._dropped_now = [r["Data"] for r in records[: self.fail_first]]
        # Nothing left to deliver: answer without calling the service at all.
        self._skip = len(records) <= self.fail_first
        if not self._skip:
            params["Records"] = records[self.fail_first :]

    def short_circuit(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.calls <= 0 or not self._skip:
            return None
        return AWSResponse("http://firehose", 200, {}, None), {"FailedPutCount": 0, "RequestResponses": []}

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.calls <= 0:
            return
        self.calls -= 1
        self.dropped.append(self._dropped_now)
        n = len(self._dropped_now)
        ok = parsed.get("RequestResponses", [])
        parsed["RequestResponses"] = [{"ErrorCode": "ServiceUnavailableException",
                                       "ErrorMessage": "Slow down."}] * n + ok
        parsed["FailedPutCount"] = n

    def __enter__(self) -> PartialFailure:
        events = self.client.meta.events
        events.register("provide-client-params.firehose.PutRecordBatch", self.before)
        events.register("before-call.firehose.PutRecordBatch", self.short_circuit)
        events.register("after-call.firehose.PutRecordBatch", self.after)
        return self

    def __exit__(self, *exc: object) -> None:
        events = self.client.meta.events
        events.unregister("provide-client-params.firehose.PutRecordBatch", self.before)
        events.unregister("before-call.firehose.PutRecordBatch", self.short_circuit)
        events.unregister("after-call.firehose.PutRecordBatch", self.after)


def test_failed_records_are_resent_exactly_once(stack: LocalStack) -> None:
    records = [{"record_id": f"r{i}", "n": i} for i in range(7)]
    stream = stack.names.stream("people")
    with PartialFailure(aws.client("firehose"), fail_first=3, calls=2) as fault:
        aws.put_records(stream, records)
    assert [len(d) for d in fault.dropped] == [3, 3]  # two refusals, then the rest went through
    rows = [r for r in analytics_rows(stack, "people") if r.get("record_id", "").startswith("r")]
    assert sorted(r["record_id"] for r in rows) == sorted(r["record_id"] for r in records)


def test_gives_up_loudly_when_firehose_keeps_failing(stack: LocalStack) -> None:
    with PartialFailure(aws.client("firehose"), fail_first=1, calls=99), \
            pytest.raises(aws.FirehoseDeliveryError, match="ServiceUnavailableException"):
        aws.put_records(stack.names.stream("faces"), [{"record_id": "x"}], attempts=3)


def test_records_are_json_lines() -> None:
    lines = list(aws._firehose_chunks([(json.dumps({"a": i}) + "\n").encode() for i in range(1200)]))
    assert [len(c) for c in lines] == [500, 500, 200]
