"""The alert rules' debounce state: one item per rule and camera, written only by the
invocation that read its current version.

The interface is vidsift.core.alerts.StateStore (the core decides, with a MemoryStore in
unit tests and local runs without a table); this is its DynamoDB implementation. Item:
``pk`` (the state key), ``state`` (the state document as compact JSON), ``version`` (a
number, 1 on the first write) and ``expires_at`` (TTL).
"""

from __future__ import annotations

import json
from typing import Any

from vidsift import aws
from vidsift.storage import dynamo


class DynamoAlertStateStore:
    """The alert-state table (contract ``alert_table``): strongly consistent reads, writes
    conditional on the version read, so two concurrent frames can never both start the same
    alert. Satisfies vidsift.core.alerts.StateStore."""

    def __init__(self, table: str) -> None:
        self.table = table

    def get(self, key: str) -> tuple[dict[str, Any] | None, int]:
        """(state document, version) of one alert key; (None, 0) if it has none yet.
        Strongly consistent: a concurrent invocation's write must be seen before deciding."""
        item = aws.client("dynamodb").get_item(TableName=self.table, Key={"pk": {"S": key}},
                                               ConsistentRead=True).get("Item")
        if not item:
            return None, 0
        return json.loads(item["state"]["S"]), int(item["version"]["N"])

    def put(self, key: str, doc: dict[str, Any], *, expected_version: int, expires_at: int) -> bool:
        """Write the state only if nobody wrote since it was read (optimistic concurrency).
        False when another invocation won the race: the caller reads again and re-decides."""
        item = {"pk": {"S": key}, "state": {"S": json.dumps(doc, separators=(",", ":"), sort_keys=True)},
                "version": {"N": str(expected_version + 1)}, "expires_at": {"N": str(expires_at)}}
        return dynamo.put_if_version(self.table, item, expected_version)
