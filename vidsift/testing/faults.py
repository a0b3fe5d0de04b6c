"""Fault injectors and hostile inputs for resilience tests of the local stack.

The local services have their own fault switches (``stack.sagemaker.faults``,
``stack.rekognition.fail_next``). For S3 and Firehose, played by moto, faults are injected
on the caller's side instead: a botocore ``before-send`` hook answers a request with the
service's own error response without sending it, which is exactly what the client would
have received from an overloaded service, and botocore's retry logic sees it as such.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from PIL import Image

from vidsift.testing.samples import photo


class _Raw:
    """The bit of a urllib3 response that AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self._body


#: Error responses as each protocol sends them: (status, headers, body).
S3_SLOW_DOWN = (503, {"Content-Type": "application/xml"},
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                b"<Message>Please reduce your request rate.</Message></Error>")
DYNAMODB_THROTTLED = (400, {"Content-Type": "application/x-amz-json-1.0",
                            "x-amzn-ErrorType": "ProvisionedThroughputExceededException"},
                      json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                                  "message": "The level of configured provisioned throughput for the table was "
                                             "exceeded."}).encode())
SQS_UNAVAILABLE = (500, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": "InternalError;Receiver"},
                   json.dumps({"__type": "com.amazonaws.sqs#InternalError",
                               "message": "We encountered an internal error. Please try again."}).encode())
FIREHOSE_UNAVAILABLE = (503, {"Content-Type": "application/x-amz-json-1.1",
                              "x-amzn-ErrorType": "ServiceUnavailableException"},
                        json.dumps({"__type": "ServiceUnavailableException", "message": "Slow down."}).encode())


class Refuse:
    """Answer some requests of a client with an error response instead of sending them.

    ``every``: refuse one request in ``every`` (1: each one), ``limit`` times in all, for the
    operations named in ``operations`` (all when empty). Thread-safe: the uploader and
    handler threads share clients. Use as a context manager on the client that the code
    under test calls (``aws.client(service)``).
    """

    def __init__(self, client: Any, response: tuple[int, dict[str, str], bytes], *, limit: int, every: int = 1,
                 operations: tuple[str, ...] = ()) -> None:
        self.client, self.response, self.limit, self.every = client, response, limit, every
        self.operations = operations
        self.seen = 0
        self.refused = 0
        self.refused_ops: list[str] = []
        self._lock = threading.Lock()
        self._event = f"before-send.{client.meta.service_model.service_id.hyphenize()}"

    def __call__(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        op = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        if self.operations and op not in self.operations:
            return None
        with self._lock:
            self.seen += 1
            if self.refused >= self.limit or self.seen % self.every:
                return None
            self.refused += 1
            self.refused_ops.append(op)
        status, headers, body = self.response
        return AWSResponse(request.url, status, headers, _Raw(body))

    def __enter__(self) -> Refuse:
        self.client.meta.events.register(self._event, self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister(self._event, self)


class LambdaKilled(BaseException):
    """The runtime ending an invocation (timeout, out of memory): not an ``Exception``, so no
    ``except Exception`` in the handler or in Powertools runs, just as when Lambda kills the
    process: nothing gets to clean up (the idempotency record stays INPROGRESS)."""


def dies_after(fn: Callable[..., Any], calls: int, *, when: Callable[..., bool] = lambda *a, **k: True
               ) -> Callable[..., Any]:
    """``fn``, but the invocation dies (LambdaKilled) on the first matching call after ``calls``
    matching calls succeeded, and on every call after that (the process is gone)."""
    state = {"done": 0, "dead": False}
    lock = threading.Lock()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with lock:
            if not state["dead"] and when(*args, **kwargs):
                if state["done"] >= calls:
                    state["dead"] = True
                else:
                    state["done"] += 1
            dead = state["dead"]
        if dead:
            raise LambdaKilled(f"invocation killed after {calls} calls of {getattr(fn, '__name__', fn)}")
        return fn(*args, **kwargs)

    wrapper.state = state  # type: ignore[attr-defined]
    return wrapper


def jpeg(name: str, quality: int = 90) -> bytes:
    """A bundled photo as JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(photo(name)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def bomb_jpeg(width: int, height: int) -> bytes:
    """A valid 64x64 JPEG whose frame header then claims ``width`` x ``height``: a few hundred
    bytes that a decoder would allocate width*height*3 bytes for."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    pos = 2
    while data[pos] == 0xFF:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            data[pos + 5 : pos + 7] = height.to_bytes(2, "big")
            data[pos + 7 : pos + 9] = width.to_bytes(2, "big")
            return bytes(data)
        pos += 2 + length
    raise AssertionError("no frame header in Pillow's JPEG")


def bomb_png(width: int, height: int) -> bytes:
    """A valid 64x64 PNG whose IHDR then claims ``width`` x ``height`` (CRC fixed up)."""
    import zlib

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 200, 30)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:20], data[20:24] = width.to_bytes(4, "big"), height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


class FirehoseRefusesRecords:
    """The next ``calls`` PutRecordBatch calls come back with every record refused
    (``FailedPutCount`` = all, each with an ErrorCode), the shape Firehose answers with when it
    is overloaded. Nothing is sent, so nothing refused is delivered behind the caller's back."""

    def __init__(self, client: Any, calls: int) -> None:
        self.client, self.calls, self.refused_records = client, calls, 0
        self._lock = threading.Lock()

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        with self._lock:
            if self.calls <= 0:
                return None
            self.calls -= 1
            n = len(json.loads(params["body"])["Records"])
            self.refused_records += n
        failed = {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
        return (AWSResponse("https://firehose", 200, {}, _Raw(b"")),
                {"FailedPutCount": n, "Encrypted": False, "RequestResponses": [dict(failed) for _ in range(n)]})

    def __enter__(self) -> FirehoseRefusesRecords:
        self.client.meta.events.register("before-call.firehose.PutRecordBatch", self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister("before-call.firehose.PutRecordBatch", self)
