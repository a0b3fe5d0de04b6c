"""The tracking table: each segment's detections and progress, each video's progress.

One table, three kinds of item under a partition key ``part`` and a number ``n``
(vidsift.core.completion says what the barrier does with them): a frame's detections
(part = "<video>/<segment>", n = frame index), a segment's progress (the same part,
n = -1: frames expected, done, given up) and a video's (part = "<video>", n = -1:
segments, tracked, end state). Sets, not counters: a frame counted twice (a retry) is
still one frame, so the moment a segment is complete is exact. One key per segment: no
item grows with the video, and a long video's frames are spread over many partition keys.
A sparse index (contract ``tracking_open_index``) holds the videos without an end state,
by last update, for the stalled-video sweeper.

The layout here is the deployed one (serverless.yml's table, items already written):
changing it is a data migration, not a refactoring.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from vidsift import aws
from vidsift.storage import dynamo

#: ``n`` of a progress item (a segment's or a video's); frame items use the frame index (>= 0).
PROGRESS_N = -1
#: Tracking items expire (DynamoDB TTL on ``expires_at``) two weeks after their last write:
#: long enough for a video's last frame to come back from a DLQ redrive, and the rows are the record.
TRACKING_TTL_S = 14 * 24 * 3600
#: Attributes of the layout, not of the progress: left out of what the store returns.
_HIDDEN = ("part", "n", "expires_at")


def _expiry() -> int:
    return int(time.time()) + TRACKING_TTL_S


def _progress(item: dict[str, Any]) -> dict[str, Any]:
    return {k: dynamo.plain(v) for k, v in item.items() if k not in _HIDDEN}


def _frame_item(part: str, frame_index: int, doc: dict[str, Any]) -> dict[str, Any]:
    return {"part": {"S": part}, "n": {"N": str(frame_index)},
            "doc": {"S": json.dumps(doc, separators=(",", ":"), sort_keys=True)},
            "expires_at": {"N": str(_expiry())}}


class ProgressStore(Protocol):
    """What the barrier, the tracker and the sweeper need of the tracking table: progress
    items updated with set semantics, frame documents written and read in batches, and the
    videos still open. Parts are ``<video>`` or ``<video>/<segment>`` (completion.segment_part)."""

    def mark(self, part: str, *, set_: dict[str, Any] | None = None, add: dict[str, set[int]] | None = None,
             default: dict[str, Any] | None = None, remove: Iterable[str] = ()) -> dict[str, Any]:
        """One atomic update of a progress item; the attributes it named, as they are now."""

    def item(self, part: str) -> dict[str, Any]:
        """A whole progress item, read strongly consistently ({} if there is none)."""

    def open_videos(self, index: str, *, updated_before: float) -> list[str]:
        """Videos without an end state, last updated before ``updated_before``."""

    def put_frames(self, frames: Sequence[tuple[str, int, dict[str, Any]]]) -> None:
        """Frames' documents, (part, frame index, document) each, every one written."""

    def get(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Any]:
        """Frame documents and progress items by (part, n); missing keys absent."""

    def frames(self, part: str) -> list[dict[str, Any]]:
        """A segment's frame documents in frame order."""


class DynamoProgressStore:
    """The tracking table in DynamoDB (AWS, or the local stack's moto: one code path)."""

    def __init__(self, table: str, *, attempts: int = 6) -> None:
        self.table = table
        #: Calls per batch before what DynamoDB keeps leaving unprocessed is an error.
        self.attempts = attempts

    def mark(self, part: str, *, set_: dict[str, Any] | None = None, add: dict[str, set[int]] | None = None,
             default: dict[str, Any] | None = None, remove: Iterable[str] = ()) -> dict[str, Any]:
        """Update a progress item: SET plain values, SET ``default``'s only where absent, ADD
        numbers to sets, REMOVE attributes. Returns UPDATED_NEW: the attributes the update named,
        as they are now (whole sets, not the whole item; DynamoDB may leave out one whose value
        did not change, so a caller needing one reads the item: :meth:`item`). With nothing to
        update, the whole item (a strongly consistent GetItem). One UpdateItem, so concurrent
        frames of a segment never lose each other's ADDs."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, adds = [], []
        if set_ or any(add.values() if add else ()):
            set_ = {**(set_ or {}), "expires_at": _expiry()}
        for i, (k, v) in enumerate((set_ or {}).items()):
            names[f"#s{i}"], values[f":s{i}"] = k, dynamo.value(v)
            sets.append(f"#s{i} = :s{i}")
        for i, (k, v) in enumerate((default or {}).items()):
            names[f"#d{i}"], values[f":d{i}"] = k, dynamo.value(v)
            sets.append(f"#d{i} = if_not_exists(#d{i}, :d{i})")
        for i, (k, v) in enumerate((add or {}).items()):
            if v:
                names[f"#a{i}"], values[f":a{i}"] = k, dynamo.value(set(v))
                adds.append(f"#a{i} :a{i}")
        removes = []
        for i, k in enumerate(remove):
            names[f"#r{i}"] = k
            removes.append(f"#r{i}")
        expr = " ".join(filter(None, ["SET " + ", ".join(sets) if sets else "",
                                      "ADD " + ", ".join(adds) if adds else "",
                                      "REMOVE " + ", ".join(removes) if removes else ""]))
        if not expr:
            return self.item(part)
        key = {"part": {"S": part}, "n": {"N": str(PROGRESS_N)}}
        extra: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        item = aws.client("dynamodb").update_item(TableName=self.table, Key=key, UpdateExpression=expr,
                                                  ExpressionAttributeNames=names, ReturnValues="UPDATED_NEW",
                                                  **extra).get("Attributes", {})
        return _progress(item)

    def item(self, part: str) -> dict[str, Any]:
        """A whole progress item, read strongly consistently ({} if there is none)."""
        key = {"part": {"S": part}, "n": {"N": str(PROGRESS_N)}}
        return _progress(aws.client("dynamodb").get_item(TableName=self.table, Key=key,
                                                         ConsistentRead=True).get("Item", {}))

    def open_videos(self, index: str, *, updated_before: float) -> list[str]:
        """Videos without an end state last updated before ``updated_before`` (epoch seconds), from
        the sparse index on ``open`` (only such videos carry it): the sweeper's candidates."""
        out: list[str] = []
        paginator = aws.client("dynamodb").get_paginator("query")
        for page in paginator.paginate(TableName=self.table, IndexName=index,
                                       KeyConditionExpression="#o = :o AND #u < :u",
                                       ExpressionAttributeNames={"#o": "open", "#u": "updated_at"},
                                       ExpressionAttributeValues={":o": {"S": "open"},
                                                                  ":u": {"N": str(updated_before)}}):
            out += [item["part"]["S"] for item in page.get("Items", [])]
        return out

    def put_frames(self, frames: Sequence[tuple[str, int, dict[str, Any]]]) -> None:
        """Several frames' detections and metadata, (part, frame index, document) each, in as
        few calls as DynamoDB takes (25 items a BatchWriteItem), resending exactly the items it
        leaves unprocessed (throttled partitions) with backoff. A frame twice in ``frames`` is
        written once, with its last document (DynamoDB refuses a batch that names one key twice)."""
        items = {(part, n): _frame_item(part, n, doc) for part, n, doc in frames}
        requests = [{"PutRequest": {"Item": item}} for item in items.values()]
        table = self.table
        for start in range(0, len(requests), dynamo.WRITE_BATCH):
            dynamo.until_processed(lambda batch: aws.client("dynamodb").batch_write_item(RequestItems={table: batch}),
                                   requests[start:start + dynamo.WRITE_BATCH],
                                   lambda resp: resp.get("UnprocessedItems", {}).get(table, []),
                                   f"{table} frame items (BatchWriteItem)", self.attempts)

    def get(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Any]:
        """Items by (part, n), read strongly consistently in as few calls as DynamoDB takes (100
        keys a BatchGetItem): frame items as their documents, progress items (n = PROGRESS_N) as
        :meth:`mark` returns them. Keys without an item are absent from the answer."""
        wanted = list(dict.fromkeys(keys))
        out: dict[tuple[str, int], Any] = {}
        table = self.table

        def got(resp: dict[str, Any]) -> Any:
            for item in resp.get("Responses", {}).get(table, []):
                key = (item["part"]["S"], int(item["n"]["N"]))
                out[key] = json.loads(item["doc"]["S"]) if key[1] != PROGRESS_N else _progress(item)
            return resp.get("UnprocessedKeys", {}).get(table) or {}

        for start in range(0, len(wanted), dynamo.GET_BATCH):
            keys_doc = {"Keys": [{"part": {"S": p}, "n": {"N": str(n)}}
                                 for p, n in wanted[start:start + dynamo.GET_BATCH]],
                        "ConsistentRead": True}
            dynamo.until_processed(lambda batch: aws.client("dynamodb").batch_get_item(RequestItems={table: batch}),
                                   keys_doc, got, f"{table} keys (BatchGetItem)", self.attempts)
        return out

    def frames(self, part: str) -> list[dict[str, Any]]:
        """The frame documents of one segment (its partition, frame items only), in frame order
        (strongly consistent reads: the frame that completed the segment was written just before)."""
        paginator = aws.client("dynamodb").get_paginator("query")
        out: list[dict[str, Any]] = []
        for page in paginator.paginate(TableName=self.table, ConsistentRead=True,
                                       KeyConditionExpression="#p = :p AND #n >= :a",
                                       ExpressionAttributeNames={"#p": "part", "#n": "n"},
                                       ExpressionAttributeValues={":p": {"S": part}, ":a": {"N": "0"}}):
            out += [json.loads(item["doc"]["S"]) for item in page.get("Items", [])]
        return out
