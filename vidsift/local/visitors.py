"""Visitors on the local stack and in a run's output folder.

A local stack lives for one ``vidsift run``, but visitors must be recognised across runs, so
their state lives in the output folder and is loaded into the stack at its start and saved at
the end: ``visitors/collection.json`` (the local Rekognition's collections, its own state
file), ``visitors/registry.json`` (the DynamoDB registry's items), and the analytics objects
(``analytics/visitor-faces/...``, ``analytics/visitor_names/names.json``,
``analytics/visitor-audit/...``) beside the tables' rows, in the bucket's key layout.

:class:`LocalStore` is the same data for the ``vidsift visitors`` commands without a stack
(vidsift.stages.visitor_admin). Face vectors are deleted from the collection file directly: it
is the local Rekognition's own persistence format, read and written whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vidsift import aws, contract
from vidsift.contract import local_names
from vidsift.stages import visitors
from vidsift.storage.visitors import DynamoVisitorRegistry


def folder(out: Path) -> Path:
    """Where visitors' state is kept under a run's output folder, so it outlives the stack."""
    return Path(out) / "visitors"


def collection_file(out: Path) -> Path:
    """The local Rekognition's saved collections (its own state file format)."""
    return folder(out) / "collection.json"


def registry_file(out: Path) -> Path:
    """The visitor registry's saved items (the DynamoDB table's, one JSON document)."""
    return folder(out) / "registry.json"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def stack_env(names: contract.ResourceNames) -> dict[str, str]:
    """What turns visitors on for the handlers of a local stack: the same variables the cloud's
    visitors=true sets."""
    return {"VISITORS": "true", "VISITOR_COLLECTION": visitors.collection_name(names),
            "VISITOR_TABLE": visitors.table_name(names)}


def create(names: contract.ResourceNames, out: Path) -> None:
    """The registry table (loaded from the folder), the collection (kept by the local
    Rekognition's state file) and the analytics objects of earlier runs."""
    ddb = aws.client("dynamodb")
    table = visitors.table_name(names)
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    aws.create_collection(visitors.collection_name(names))
    if registry_file(out).exists():
        for item in json.loads(registry_file(out).read_text()):
            ddb.put_item(TableName=table, Item={"pk": {"S": item["pk"]}, "version": {"N": str(item["version"])},
                                                "doc": {"S": json.dumps(item["doc"], sort_keys=True)}})
    bucket = names.bucket("analytics")
    root = Path(out) / "analytics"
    for prefix in _object_prefixes():
        base = root / prefix
        if base.exists():
            for path in sorted(p for p in base.rglob("*") if p.is_file()):
                aws.client("s3").put_object(Bucket=bucket, Key=path.relative_to(root).as_posix(),
                                            Body=path.read_bytes())


def _object_prefixes() -> list[str]:
    v = contract.load()["visitors"]
    return [v["faces_prefix"], v["audit_prefix"], v["names_key"].split("/")[0] + "/"]


def save(names: contract.ResourceNames, out: Path) -> None:
    """The registry and the visitors' analytics objects back into the output folder."""
    items = [{"pk": k, "doc": d, "version": v} for k, d, v in DynamoVisitorRegistry(visitors.table_name(names)).scan()]
    _write_atomic(registry_file(out), json.dumps(sorted(items, key=lambda i: i["pk"]), indent=1))
    bucket = names.bucket("analytics")
    root = Path(out) / "analytics"
    for prefix in _object_prefixes():
        for key in aws.list_keys(bucket, prefix):
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(aws.get_object_bytes(bucket, key))


class LocalStore:
    """A run's output folder as a vidsift.stages.visitor_admin.Store (no stack needed)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.root = self.out / "analytics"
        self.collection = visitors.collection_name(local_names())

    # registry
    def _items(self) -> dict[str, dict[str, Any]]:
        path = registry_file(self.out)
        return {i["pk"]: i for i in json.loads(path.read_text())} if path.exists() else {}

    def _save_items(self, items: dict[str, dict[str, Any]]) -> None:
        _write_atomic(registry_file(self.out), json.dumps(sorted(items.values(), key=lambda i: i["pk"]), indent=1))

    def items(self) -> list[tuple[str, dict[str, Any], int]]:
        return [(k, i["doc"], i["version"]) for k, i in sorted(self._items().items())]

    def get(self, key: str) -> tuple[dict[str, Any] | None, int]:
        item = self._items().get(key)
        return (item["doc"], item["version"]) if item else (None, 0)

    def put(self, key: str, doc: dict[str, Any], expected_version: int) -> bool:
        items = self._items()
        if (items[key]["version"] if key in items else 0) != expected_version:
            return False
        items[key] = {"pk": key, "doc": doc, "version": expected_version + 1}
        self._save_items(items)
        return True

    def delete_item(self, key: str) -> None:
        items = self._items()
        if items.pop(key, None) is not None:
            self._save_items(items)

    # collection (the local Rekognition's state file)
    def _state(self) -> dict[str, Any]:
        path = collection_file(self.out)
        return json.loads(path.read_text()) if path.exists() else {"collections": []}

    def faces(self) -> list[dict[str, Any]]:
        for c in self._state()["collections"]:
            if c["id"] == self.collection:
                return [{"FaceId": f["face_id"], "ExternalImageId": f.get("external_image_id")} for f in c["faces"]]
        return []

    def delete_faces(self, face_ids: list[str]) -> list[str]:
        if not face_ids:
            return []
        state, wanted, deleted = self._state(), set(face_ids), []
        for c in state["collections"]:
            if c["id"] == self.collection:
                deleted = [f["face_id"] for f in c["faces"] if f["face_id"] in wanted]
                c["faces"] = [f for f in c["faces"] if f["face_id"] not in wanted]
        _write_atomic(collection_file(self.out), json.dumps(state))
        return deleted

    # analytics objects
    def keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        start = base if base.is_dir() else base.parent
        if not start.exists():
            return []
        found = (p.relative_to(self.root).as_posix() for p in start.rglob("*") if p.is_file())
        return sorted(k for k in found if k.startswith(prefix) and not k.endswith(".tmp"))

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, body: bytes, content_type: str) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)

    def delete(self, key: str) -> None:
        path = self.root / key
        path.unlink(missing_ok=True)
        # As in S3, a "folder" is nothing once its last object is gone.
        for parent in path.parents:
            if parent == self.root or not parent.is_relative_to(self.root) or any(parent.iterdir()):
                break
            parent.rmdir()

    def where(self, key: str) -> str:
        return str(self.root / key)
