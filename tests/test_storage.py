"""The stores (vidsift.storage) against moto's DynamoDB over HTTP, and the boundary that keeps
table layouts out of vidsift/aws.py.

The stores' items are already in deployed tables, so the layout is pinned here attribute by
attribute (read back raw with the client): a change to it is a data migration and must fail
these tests first. Each store's behaviour (set semantics, conditional writes, batching past
DynamoDB's per-call limits, the sparse open-video index) is checked on the same wire
protocol the local stack and AWS speak.
"""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vidsift import aws, contract
from vidsift.core.alerts import MemoryStore, StateStore
from vidsift.storage.alert_state import DynamoAlertStateStore
from vidsift.storage.progress import PROGRESS_N, TRACKING_TTL_S, DynamoProgressStore, ProgressStore
from vidsift.storage.visitors import DynamoVisitorRegistry, VisitorRegistry

ROOT = Path(__file__).resolve().parents[1]
TRACKING, ALERTS, VISITORS = "tracking", "alert-state", "visitors"
INDEX = contract.load()["tracking_open_index"]


@pytest.fixture
def ddb(fresh_moto: Callable[..., str]) -> Iterator[Any]:
    """A fresh moto with the three tables as serverless.yml declares them (keys, the sparse index)."""
    fresh_moto()
    client = aws.client("dynamodb")
    client.create_table(
        TableName=TRACKING, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "part", "AttributeType": "S"},
                              {"AttributeName": "n", "AttributeType": "N"},
                              {"AttributeName": "open", "AttributeType": "S"},
                              {"AttributeName": "updated_at", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "part", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
                                 "KeySchema": [{"AttributeName": "open", "KeyType": "HASH"},
                                               {"AttributeName": "updated_at", "KeyType": "RANGE"}]}])
    for table in (ALERTS, VISITORS):
        client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    yield client
    aws.reset_clients()


def raw(client: Any, table: str, key: dict[str, Any]) -> dict[str, Any]:
    return client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]


# --- the boundary -------------------------------------------------------------------------


def test_aws_module_defines_no_table_layout() -> None:
    """vidsift/aws.py makes clients and generic calls: no DynamoDB client, no item, key or
    expression is built there (they belong to the store that owns the table). ``Key`` is left
    out of the words: S3 calls name their object with it too."""
    tree = ast.parse((ROOT / "vidsift" / "aws.py").read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert "dynamodb" not in {s.lower() for s in strings}
    dynamo_words = {"TableName", "Item", "KeyConditionExpression", "UpdateExpression", "ConditionExpression",
                    "ExpressionAttributeNames", "ExpressionAttributeValues", "RequestItems", "ConsistentRead"}
    keywords = {k.arg for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords}
    assert not (dynamo_words & (keywords | strings))
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert not calls & {"put_item", "get_item", "update_item", "delete_item", "query", "scan",
                        "batch_write_item", "batch_get_item"}


def test_the_dynamodb_stores_satisfy_their_interfaces() -> None:
    """The stages type against the interfaces; the DynamoDB classes provide every method
    (by name and signature), as the in-memory alert store does."""
    import inspect

    for impl, proto in ((DynamoProgressStore, ProgressStore), (DynamoVisitorRegistry, VisitorRegistry),
                        (DynamoAlertStateStore, StateStore), (MemoryStore, StateStore)):
        wanted = {n for n, v in vars(proto).items() if callable(v) and not n.startswith("_")}
        assert wanted, proto
        for name in wanted:
            assert str(inspect.signature(getattr(impl, name))) == str(inspect.signature(getattr(proto, name))), name


# --- the tracking table -------------------------------------------------------------------


def test_progress_items_are_sets_and_keep_their_layout(ddb: Any) -> None:
    store = DynamoProgressStore(TRACKING)
    before = int(time.time())
    got = store.mark("v/0", set_={"expected": 3, "start": 1.5}, add={"done": {0, -1}, "failed": {-1}},
                     default={"first": 0})
    assert got == {"expected": 3, "start": 1.5, "done": {-1, 0}, "failed": {-1}, "first": 0}
    again = store.mark("v/0", add={"done": {0, 2}}, default={"first": 7})  # a retried frame counts once
    assert again["done"] == {-1, 0, 2}  # UPDATED_NEW: an unchanged 'first' may be left out of it
    assert store.item("v/0")["first"] == 0  # a default never overwrites
    store.mark("v/0", remove=["start"])
    assert store.item("v/0") == {"expected": 3, "done": {-1, 0, 2}, "failed": {-1}, "first": 0}
    assert store.mark("v/0") == store.item("v/0")  # nothing to update: the whole item
    assert store.item("nothing") == {}
    item = raw(ddb, TRACKING, {"part": {"S": "v/0"}, "n": {"N": str(PROGRESS_N)}})
    expires = int(item.pop("expires_at")["N"])
    assert before + TRACKING_TTL_S <= expires <= int(time.time()) + TRACKING_TTL_S
    layout = {k: ({"NS": sorted(v["NS"], key=int)} if "NS" in v else v) for k, v in item.items()}  # sets: no order
    assert layout == {"part": {"S": "v/0"}, "n": {"N": "-1"}, "expected": {"N": "3"}, "first": {"N": "0"},
                      "done": {"NS": ["-1", "0", "2"]}, "failed": {"NS": ["-1"]}}


def test_frames_are_written_and_read_in_batches_past_dynamodbs_limits(ddb: Any) -> None:
    """60 frames (three BatchWriteItems of at most 25) and 130 keys (two BatchGetItems of at most
    100), frame documents and progress items in one read; a frame named twice keeps its last."""
    store = DynamoProgressStore(TRACKING)
    frames = [("v/0", i, {"meta": {"frame-index": str(i)}, "boxes": []}) for i in range(60)]
    store.put_frames([*frames, ("v/0", 5, {"meta": {"frame-index": "5"}, "boxes": [[1]]})])
    store.mark("v/0", set_={"expected": 60})
    docs = store.frames("v/0")
    assert [int(d["meta"]["frame-index"]) for d in docs] == list(range(60))  # frame order, no progress item
    assert docs[5]["boxes"] == [[1]]
    found = store.get([("v/0", i) for i in range(129)] + [("v/0", PROGRESS_N)])
    assert len(found) == 61 and found[("v/0", PROGRESS_N)]["expected"] == 60 and ("v/0", 100) not in found
    item = raw(ddb, TRACKING, {"part": {"S": "v/0"}, "n": {"N": "7"}})
    assert set(item) == {"part", "n", "doc", "expires_at"}
    assert item["doc"] == {"S": '{"boxes":[],"meta":{"frame-index":"7"}}'}  # compact, keys sorted


def test_open_videos_come_from_the_sparse_index_by_last_update(ddb: Any) -> None:
    store = DynamoProgressStore(TRACKING)
    store.mark("old", set_={"updated_at": 100}, default={"open": "open"})
    store.mark("new", set_={"updated_at": 500}, default={"open": "open"})
    store.mark("ended", set_={"updated_at": 50, "state": "tracked"})  # no 'open': not in the index
    assert sorted(store.open_videos(INDEX, updated_before=200)) == ["old"]
    store.mark("old", remove=["open"])
    assert store.open_videos(INDEX, updated_before=1000) == ["new"]


# --- the alert state and the visitors' registry -------------------------------------------


def test_alert_state_writes_only_over_the_version_it_read(ddb: Any) -> None:
    store = DynamoAlertStateStore(ALERTS)
    assert store.get("rule#cam") == (None, 0)
    assert store.put("rule#cam", {"hits": {"a": 1}}, expected_version=0, expires_at=1234)
    assert not store.put("rule#cam", {"hits": {}}, expected_version=0, expires_at=1234)  # lost the race
    assert store.put("rule#cam", {"hits": {"b": 2}, "last_alert": 9}, expected_version=1, expires_at=99)
    assert not store.put("rule#cam", {}, expected_version=1, expires_at=99)
    assert store.get("rule#cam") == ({"hits": {"b": 2}, "last_alert": 9}, 2)
    assert raw(ddb, ALERTS, {"pk": {"S": "rule#cam"}}) == {
        "pk": {"S": "rule#cam"}, "state": {"S": '{"hits":{"b":2},"last_alert":9}'}, "version": {"N": "2"},
        "expires_at": {"N": "99"}}


def test_the_visitors_registry_is_versioned_scanned_and_deleted(ddb: Any) -> None:
    registry = DynamoVisitorRegistry(VISITORS)
    assert registry.get("visitor#v1") == (None, 0)
    assert registry.put("visitor#v1", {"visits": ["a/1"]}, expected_version=0)
    assert not registry.put("visitor#v1", {"visits": []}, expected_version=0)
    assert registry.put("visitor#v1", {"visits": ["a/1", "b/2"]}, expected_version=1)
    for i in range(30):
        assert registry.put(f"visit#{i}", {"visitor_id": "v1", "pad": "x" * 40_000}, expected_version=0)
    assert ddb.scan(TableName=VISITORS).get("LastEvaluatedKey")  # 1.2 MB: more than one 1 MB Scan page
    items = registry.scan()
    assert len(items) == 31 and ("visitor#v1", {"visits": ["a/1", "b/2"]}, 2) in items
    assert raw(ddb, VISITORS, {"pk": {"S": "visitor#v1"}}) == {
        "pk": {"S": "visitor#v1"}, "doc": {"S": json.dumps({"visits": ["a/1", "b/2"]}, separators=(",", ":"))},
        "version": {"N": "2"}}
    registry.delete("visitor#v1")
    assert registry.get("visitor#v1") == (None, 0) and len(registry.scan()) == 30

