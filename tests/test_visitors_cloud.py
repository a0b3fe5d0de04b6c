"""The visitors commands against a stack through the AWS APIs (CloudStore: DynamoDB, the
Rekognition collection, the analytics bucket), here the local stack: forget rewrites the
GZIP objects Firehose wrote (still GZIP), erases one visitor's vectors, copies and rows and
nobody else's, keeps a tombstone and writes an audit record; naming writes visitor_names;
retention deletes the faces and never reuses the id."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from vidsift import aws, contract
from vidsift.cli.visitors import admin_policy
from vidsift.core import visitors as rules
from vidsift.local import visitors as local_visitors
from vidsift.local.dispatcher import _acting_as
from vidsift.local.stack import LocalStack
from vidsift.stages import visitor_admin, visitors
from vidsift.testing import calls
from vidsift.testing.samples import jpeg as samples_jpeg
from vidsift.testing.samples import photo


def jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    """The test equipment's JPEG at this module's quality (95)."""
    return samples_jpeg(rgb, quality)


def rows(table: str, n: int, visitor: str | None, video: str) -> list[dict[str, object]]:
    base = {c: None for c in contract.columns(table)}
    return [base | {"record_id": f"{table}-{video}-{visitor}-{i}", "video_id": video, "track_id": f"p00{i}",
                    "visitor_id": visitor, "dt": "2026-12-01"} for i in range(n)]


@pytest.fixture(scope="module")
def store(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[visitor_admin.CloudStore]:
    names = local_stack.names
    local_visitors.create(names, tmp_path_factory.mktemp("empty"))  # the table and the collection
    s = visitor_admin.CloudStore(visitors.table_name(names), visitors.collection_name(names),
                                 names.bucket("analytics"))
    yield s
    aws.client("dynamodb").delete_table(TableName=s.table)
    aws.client("rekognition").delete_collection(CollectionId=s.collection)


def seed(store: visitor_admin.CloudStore) -> None:
    """Two visitors: v000001 (astronaut, two visits) and v000002 (Grace Hopper, one), their
    faces, copies, registry items and rows in GZIP objects shared with rows of nobody."""
    for vid, who, visits in (("v000001", "astronaut", ["va/p001", "vb/p001"]), ("v000002", "grace_hopper",
                                                                                 ["va/p002"])):
        face = aws.index_faces(store.collection, jpeg(photo(who)), rules.external_image_id(vid, "0" * 16))
        assert face["FaceRecords"]
        thumb = f"{contract.load()['visitors']['faces_prefix']}{vid}/{'0' * 16}.jpg"
        store.write(thumb, jpeg(photo(who)), "image/jpeg")
        store.put(visitors.visitor_key(vid), {"visitor_id": vid, "status": "active", "visits": visits,
                                              "cameras": ["door"], "faces": {"0" * 16: "x"},
                                              "first_seen": "2026-12-01T10:00:00.000Z",
                                              "last_seen": "2026-12-01T11:00:00.000Z", "thumbnail": thumb}, 0)
        for vk in visits:
            store.put(f"visit#{vk}", {"visitor_id": vid, "visit_number": 1, "visitor_first_seen": "x"}, 0)
    for table in visitor_admin.ROW_TABLES:
        for video, group in (("va", rows(table, 1, "v000001", "va") + rows(table, 1, "v000002", "va")
                              + rows(table, 2, None, "va")),
                             ("vb", rows(table, 1, "v000001", "vb"))):
            body = "".join(json.dumps(r) + "\n" for r in group).encode()
            aws.put_object(store.bucket, f"{table}/dt=2026-12-01/{video}.gz", gzip.compress(body),
                           content_type="application/json", metadata={})


def table_rows(store: visitor_admin.CloudStore, table: str) -> list[dict[str, object]]:
    out = []
    for key in store.keys(f"{table}/"):
        raw = aws.get_object_bytes(store.bucket, key)
        assert raw[:2] == b"\x1f\x8b", f"{key} is no longer GZIP"
        out += [json.loads(line) for line in gzip.decompress(raw).splitlines() if line.strip()]
    return out


def test_forget_name_and_expire_through_the_apis(store: visitor_admin.CloudStore) -> None:
    seed(store)
    before = {t: table_rows(store, t) for t in visitor_admin.ROW_TABLES}
    recorder = calls.Recorder()
    with recorder.recording(), _acting_as("admin", "cli"):
        _forget_name_and_expire(store, before)
    # `vidsift visitors --stage S policy`: every call the commands made is allowed, and every
    # grant but promote's IndexFaces and the account lookup was used.
    acct = "123456789012"
    names = calls.Names(local_prefix=contract.local_names().prefix,
                        stage_prefix=contract.ResourceNames(stage="dev", account=acct).prefix, account=acct)
    none: defaultdict[str, str | None] = defaultdict(lambda: None)
    reqs: dict[calls.Request, list[calls.Call]] = {}
    for call in (c for c in recorder.calls if c.stage == "admin"):
        for req in calls.requests(call, names, calls.Keys(none, none, none)):
            reqs.setdefault(req, []).append(call)
    policy = admin_policy(contract.ResourceNames(stage="dev", account=acct), region="us-east-1")
    role = calls.Role(policy["Statement"])
    assert calls.denials(role, reqs) == []
    unused, _ = calls.unused_grants(role, list(reqs), "admin", {
        ("admin", "rekognition:IndexFaces", "*known-faces"): "promote, not run here",
        ("admin", "s3:GetObject", f"*{contract.load()['visitors']['faces_prefix']}*"): "promote reads the copy",
        ("admin", "sts:GetCallerIdentity", "*"): "the account, looked up before the store is made"})
    assert unused == []


def _forget_name_and_expire(store: visitor_admin.CloudStore, before: dict[str, list[dict[str, object]]]) -> None:
    assert visitor_admin.name(store, "v000002", "Grace")["name"] == "Grace"
    with pytest.raises(visitor_admin.VisitorError):
        visitor_admin.name(store, "v000003", "Nobody")
    record = visitor_admin.forget(store, "v000001")
    assert record["rows_deleted"] == {"tracks": 2, "faces": 2} and record["face_vectors_deleted"] == 1
    for t in visitor_admin.ROW_TABLES:
        after = table_rows(store, t)
        assert len(after) == len(before[t]) - 2
        assert after == [r for r in before[t] if r["visitor_id"] != "v000001"]  # everyone else untouched
    assert store.keys("tracks/") == ["tracks/dt=2026-12-01/va.gz"]  # vb held only v000001's row
    left = {rules.parse_external_image_id(f["ExternalImageId"])[0] for f in store.faces()}
    assert left == {"v000002"}
    assert store.keys(f"{contract.load()['visitors']['faces_prefix']}v000001/") == []
    assert store.get("visit#va/p001") == (None, 0)
    stone, _ = store.get(visitors.visitor_key("v000001"))
    assert stone["status"] == "forgotten" and stone["visits"] == [] and stone["first_seen"] is None
    with _acting_as("test", "check"):  # the test's own read, not the commands'
        audit = json.loads(store.read(record["audit_record"].split(store.bucket + "/", 1)[1]))
    assert audit["visitor_id"] == "v000001" and "ExternalImageId" not in json.dumps(audit)
    assert visitor_admin.names(store)["v000002"]["name"] == "Grace"
    # Retention: Grace Hopper unseen for 31 days is deleted from the collection, her rows stay.
    assert visitor_admin.expire(store, 30, now=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=365)) == ["v000002"]
    assert store.faces() == []
    assert len(table_rows(store, "faces")) == len(before["faces"]) - 2
    assert visitor_admin.expire(store, 30) == []  # nothing left to expire
