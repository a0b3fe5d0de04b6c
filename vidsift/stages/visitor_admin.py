"""Visitors' lifecycle: list, name, forget on request, expire after the retention period.

The rules are written once against a :class:`Store` (the registry, the collection's faces and
the analytics objects), which is the deployed stack (:class:`CloudStore`: the registry through
vidsift.storage.visitors, Rekognition and S3 through vidsift/aws.py) or a local run's output folder
(vidsift.local.visitors.LocalStore). Every command checks its input before it changes
anything: an unknown id, an empty name or a forget of an unknown id is one clear error and
nothing is changed.

Forget (GDPR Art. 17) erases: the visitor's face vectors in the collection, their best-face
copies, their rows in ``tracks`` and ``faces`` (the objects holding them are rewritten without
them), their name, and their registry entry but a tombstone (the id and when, so the id is never
given again); and it writes an audit record saying what was erased and when, with no biometric
data. Not erased (README says so): raw footage (kept until rawRetentionDays), sampled frames
(until frameExpiryDays), ``people`` rows (per frame: counts and boxes, no face), logs.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from vidsift import aws, contract
from vidsift.core import visitors as rules
from vidsift.core.keys import visitor_audit_key, visitor_faces_prefix
from vidsift.core.records import iso, utc_now
from vidsift.stages.visitors import visitor_key
from vidsift.storage.visitors import DynamoVisitorRegistry

#: The tables whose rows name a visitor (people rows hold boxes, not faces or visitors).
ROW_TABLES = ("tracks", "faces")


class VisitorError(ValueError):
    """Bad input to a visitors command: said once, nothing changed."""


class Store(Protocol):
    """Where a stack's (or a local run's) visitor data lives."""

    def items(self) -> list[tuple[str, dict[str, Any], int]]: ...
    def get(self, key: str) -> tuple[dict[str, Any] | None, int]: ...
    def put(self, key: str, doc: dict[str, Any], expected_version: int) -> bool: ...
    def delete_item(self, key: str) -> None: ...
    def faces(self) -> list[dict[str, Any]]: ...
    def delete_faces(self, face_ids: list[str]) -> list[str]: ...
    def keys(self, prefix: str) -> list[str]: ...
    def read(self, key: str) -> bytes: ...
    def write(self, key: str, body: bytes, content_type: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def where(self, key: str) -> str: ...


@dataclass
class CloudStore:
    """The deployed stack's visitors: registry table, collection, analytics bucket."""

    table: str
    collection: str
    bucket: str
    #: Objects read GZIP-compressed (Firehose's default): written back compressed, as read.
    _gzipped: set[str] = field(default_factory=set)

    def items(self) -> list[tuple[str, dict[str, Any], int]]:
        return DynamoVisitorRegistry(self.table).scan()

    def get(self, key: str) -> tuple[dict[str, Any] | None, int]:
        return DynamoVisitorRegistry(self.table).get(key)

    def put(self, key: str, doc: dict[str, Any], expected_version: int) -> bool:
        return DynamoVisitorRegistry(self.table).put(key, doc, expected_version=expected_version)

    def delete_item(self, key: str) -> None:
        DynamoVisitorRegistry(self.table).delete(key)

    def faces(self) -> list[dict[str, Any]]:
        return aws.list_faces(self.collection)

    def delete_faces(self, face_ids: list[str]) -> list[str]:
        return aws.delete_faces(self.collection, face_ids) if face_ids else []

    def keys(self, prefix: str) -> list[str]:
        return aws.list_keys(self.bucket, prefix)

    def read(self, key: str) -> bytes:
        data = aws.get_object_bytes(self.bucket, key)
        if data[:2] != b"\x1f\x8b":
            return data
        self._gzipped.add(key)
        return gzip.decompress(data)

    def write(self, key: str, body: bytes, content_type: str) -> None:
        if key in self._gzipped:
            body = gzip.compress(body, mtime=0)
        aws.put_object(self.bucket, key, body, content_type=content_type, metadata={})

    def delete(self, key: str) -> None:
        aws.delete_object(self.bucket, key)

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def _names_key() -> str:
    return str(contract.load()["visitors"]["names_key"])


def names(store: Store) -> dict[str, dict[str, Any]]:
    """visitor id -> its visitor_names row."""
    if _names_key() not in store.keys(_names_key()):
        return {}
    rows = [json.loads(line) for line in store.read(_names_key()).splitlines() if line.strip()]
    return {r["visitor_id"]: r for r in rows}


def _write_names(store: Store, rows: dict[str, dict[str, Any]]) -> None:
    cols = [c["Name"] for c in contract.load()["visitor_tables"]["visitor_names"]["columns"]]
    body = "".join(json.dumps({c: r[c] for c in cols}) + "\n" for _, r in sorted(rows.items()))
    store.write(_names_key(), body.encode(), "application/json")


def _visitor(store: Store, visitor_id: str) -> tuple[dict[str, Any], int]:
    if not rules.is_visitor_id(visitor_id):
        raise VisitorError(f"{visitor_id!r} is not a visitor id (they look like v000123; see: vidsift visitors list)")
    doc, version = store.get(visitor_key(visitor_id))
    if doc is None:
        raise VisitorError(f"no visitor {visitor_id} here (see: vidsift visitors list)")
    return doc, version


def list_visitors(store: Store) -> list[dict[str, Any]]:
    """Every visitor, newest first seen last: visits, first and last seen, cameras, thumbnail."""
    named = names(store)
    out = []
    for key, doc, _ in store.items():
        if not key.startswith("visitor#"):
            continue
        vid = doc["visitor_id"]
        out.append({"visitor_id": vid, "name": (named.get(vid) or {}).get("name"), "status": doc["status"],
                    "visits": len(doc.get("visits", [])), "returning": len(doc.get("visits", [])) > 1,
                    "first_seen": doc.get("first_seen"), "last_seen": doc.get("last_seen"),
                    "cameras": doc.get("cameras", []), "faces_indexed": len(doc.get("faces", {})),
                    "thumbnail": store.where(doc["thumbnail"]) if doc.get("thumbnail") else None})
    return sorted(out, key=lambda v: v["visitor_id"])


def name(store: Store, visitor_id: str, display_name: str, now: datetime | None = None) -> dict[str, Any]:
    """Record a visitor's name (a visitor_names row, joined at query time: no reprocessing)."""
    try:
        clean = rules.check_name(display_name)
    except ValueError as exc:
        raise VisitorError(str(exc)) from exc
    doc, _ = _visitor(store, visitor_id)
    if doc["status"] == "forgotten":
        raise VisitorError(f"visitor {visitor_id} was forgotten on request: there is nobody to name")
    rows = names(store)
    row = {"visitor_id": visitor_id, "name": clean, "named_at": iso(now or utc_now())}
    rows[visitor_id] = row
    _write_names(store, rows)
    return row


def _delete_visitor_faces(store: Store, visitor_id: str) -> int:
    ids = [f["FaceId"] for f in store.faces()
           if (rules.parse_external_image_id(f.get("ExternalImageId")) or ("",))[0] == visitor_id]
    return len(store.delete_faces(ids))


def _delete_thumbnails(store: Store, visitor_id: str) -> int:
    keys = store.keys(visitor_faces_prefix(visitor_id))
    for key in keys:
        store.delete(key)
    return len(keys)


def _rewrite_rows(store: Store, visitor_id: str) -> tuple[dict[str, int], int]:
    """Remove the visitor's rows from the tracks and faces objects; (rows removed per table,
    objects rewritten). An object left with no row is deleted."""
    removed = dict.fromkeys(ROW_TABLES, 0)
    rewritten = 0
    for table in ROW_TABLES:
        for key in store.keys(f"{table}/"):
            data = store.read(key)
            if data[:4] == b"PAR1":
                raise VisitorError(f"{store.where(key)} is Parquet (parquet=true): forget rewrites JSON rows only")
            lines = data.decode().splitlines()
            keep = [ln for ln in lines if ln.strip() and json.loads(ln).get("visitor_id") != visitor_id]
            gone = sum(1 for ln in lines if ln.strip()) - len(keep)
            if not gone:
                continue
            removed[table] += gone
            rewritten += 1
            if keep:
                store.write(key, ("\n".join(keep) + "\n").encode(), "application/json")
            else:
                store.delete(key)
    return removed, rewritten


def _tombstone(store: Store, visitor_id: str, status: str, at: str) -> None:
    """The registry keeps the id and when it went (no face, no visit): ids are never reused."""
    while True:
        doc, version = store.get(visitor_key(visitor_id))
        stone = {"visitor_id": visitor_id, "status": status, f"{status}_at": at,
                 "first_seen": None if status == "forgotten" else (doc or {}).get("first_seen"),
                 "last_seen": None if status == "forgotten" else (doc or {}).get("last_seen"),
                 "visits": [] if status == "forgotten" else (doc or {}).get("visits", []),
                 "cameras": [] if status == "forgotten" else (doc or {}).get("cameras", []),
                 "faces": {}, "thumbnail": None}
        if store.put(visitor_key(visitor_id), stone, version):
            return


def _audit(store: Store, record: dict[str, Any]) -> str:
    key = visitor_audit_key(record["at"], record["visitor_id"], record["action"])
    store.write(key, json.dumps(record, indent=1, sort_keys=True).encode(), "application/json")
    return store.where(key)


def forget(store: Store, visitor_id: str, now: datetime | None = None, reason: str = "request") -> dict[str, Any]:
    """Erase one visitor (GDPR Art. 17) and write the audit record; returns that record."""
    doc, _ = _visitor(store, visitor_id)
    if doc["status"] == "forgotten":
        raise VisitorError(f"visitor {visitor_id} was already forgotten ({doc.get('forgotten_at')})")
    at = iso(now or utc_now())
    visits = list(doc.get("visits", []))
    rows, rewritten = _rewrite_rows(store, visitor_id)  # first: it refuses Parquet before anything is erased
    faces = _delete_visitor_faces(store, visitor_id)
    thumbs = _delete_thumbnails(store, visitor_id)
    named = names(store)
    had_name = named.pop(visitor_id, None) is not None
    if had_name:
        _write_names(store, named)
    for vk in visits:
        store.delete_item(f"visit#{vk}")
    _tombstone(store, visitor_id, "forgotten", at)
    record = {"action": "forget", "visitor_id": visitor_id, "at": at, "reason": reason,
              "face_vectors_deleted": faces, "face_copies_deleted": thumbs, "rows_deleted": rows,
              "objects_rewritten": rewritten, "name_deleted": had_name, "visits": len(visits),
              "not_erased": ["raw footage (until rawRetentionDays)", "sampled frames (until frameExpiryDays)",
                             "people rows (per-frame counts and boxes)", "function logs (logRetentionDays)"]}
    record["audit_record"] = _audit(store, record)
    return record


def expire(store: Store, retention_days: float, now: datetime | None = None) -> list[str]:
    """Delete from the collection every visitor not seen for ``retention_days`` (their faces
    and thumbnails; rows and names stay, the id is never given again). Returns their ids."""
    now = now or utc_now()
    done = []
    for key, doc, _ in store.items():
        if not key.startswith("visitor#") or doc.get("status") != "active" or not doc.get("last_seen"):
            continue
        if not rules.expired(doc["last_seen"], now, retention_days):
            continue
        vid = doc["visitor_id"]
        faces = _delete_visitor_faces(store, vid)
        thumbs = _delete_thumbnails(store, vid)
        _tombstone(store, vid, "expired", iso(now))
        _audit(store, {"action": "expire", "visitor_id": vid, "at": iso(now), "retention_days": retention_days,
                       "last_seen": doc["last_seen"], "face_vectors_deleted": faces, "face_copies_deleted": thumbs})
        done.append(vid)
    return done


def thumbnail_bytes(store: Store, visitor_id: str) -> bytes:
    doc, _ = _visitor(store, visitor_id)
    if not doc.get("thumbnail"):
        raise VisitorError(f"visitor {visitor_id} has no face copy left ({doc['status']})")
    return store.read(doc["thumbnail"])


def visit_counts(items: Iterable[tuple[str, dict[str, Any], int]]) -> dict[str, int]:
    return {d["visitor_id"]: len(d.get("visits", [])) for k, d, _ in items if k.startswith("visitor#")}
