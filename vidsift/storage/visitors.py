"""The visitors' registry: one item per visitor, per visit and for the id counter, each read
and rewritten under optimistic concurrency (vidsift.stages.visitors decides what they hold).

Item: ``pk`` (the registry key), ``doc`` (the document as compact JSON) and ``version`` (a
number, 1 on the first write). No TTL: the retention sweep deletes visitors itself, because
their faces must leave the collection at the same time.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from vidsift import aws
from vidsift.storage import dynamo


class VisitorRegistry(Protocol):
    """What the visitors stage, the retention sweep and the admin commands need of the
    registry: versioned reads and conditional writes of one item, the whole registry, deletes."""

    def get(self, key: str) -> tuple[dict[str, Any] | None, int]:
        """(document, version) of one item; (None, 0) if there is none."""

    def put(self, key: str, doc: dict[str, Any], *, expected_version: int) -> bool:
        """Write one item if its version is still ``expected_version``; False if not."""

    def scan(self) -> list[tuple[str, dict[str, Any], int]]:
        """Every item: (key, document, version)."""

    def delete(self, key: str) -> None:
        """Remove one item."""


class DynamoVisitorRegistry:
    """The registry table (VISITOR_TABLE) in DynamoDB (AWS, or the local stack's moto)."""

    def __init__(self, table: str) -> None:
        self.table = table

    def get(self, key: str) -> tuple[dict[str, Any] | None, int]:
        """(document, version) of one registry item; (None, 0) if there is none. Strongly
        consistent: a concurrent invocation's write must be seen before deciding."""
        item = aws.client("dynamodb").get_item(TableName=self.table, Key={"pk": {"S": key}},
                                               ConsistentRead=True).get("Item")
        if not item:
            return None, 0
        return json.loads(item["doc"]["S"]), int(item["version"]["N"])

    def put(self, key: str, doc: dict[str, Any], *, expected_version: int) -> bool:
        """Write a registry item only if nobody wrote it since it was read (optimistic
        concurrency); False when another invocation won: the caller reads again and re-decides."""
        item = {"pk": {"S": key}, "doc": {"S": json.dumps(doc, separators=(",", ":"), sort_keys=True)},
                "version": {"N": str(expected_version + 1)}}
        return dynamo.put_if_version(self.table, item, expected_version)

    def scan(self) -> list[tuple[str, dict[str, Any], int]]:
        """Every registry item: (key, document, version). The registry is small (one item per
        visitor and per visit), and the retention sweep and the admin commands read it whole."""
        out: list[tuple[str, dict[str, Any], int]] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            resp = aws.client("dynamodb").scan(**kwargs)
            out += [(i["pk"]["S"], json.loads(i["doc"]["S"]), int(i["version"]["N"])) for i in resp.get("Items", [])]
            if not resp.get("LastEvaluatedKey"):
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def delete(self, key: str) -> None:
        """Remove one item (a visitor past retention, a name forgotten): unconditional, the
        caller has already decided."""
        aws.client("dynamodb").delete_item(TableName=self.table, Key={"pk": {"S": key}})
