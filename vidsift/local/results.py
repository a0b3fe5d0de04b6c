"""Copies what a local run produced out of the local buckets, so results outlive the stack.

Layout under the output folder (the same table layout as the analytics bucket, with the
day partitions Athena sees):
``analytics/people/dt=YYYY-MM-DD/<video_id>.json``, ``analytics/faces/...``, ``analytics/tracks/...``,
``frames/<video_id>/<frame>.jpg`` (frames with people) and ``summaries/<video_id>.json``.
"""

from __future__ import annotations

import gzip
import json
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidsift import aws, contract
from vidsift.core.events import parse_s3_message
from vidsift.local.moto_process import OBJECTS_PATH
from vidsift.local.stack import LocalStack


def object_keys(bucket: str, prefix: str = "") -> list[str]:
    """Every key under ``prefix`` (all pages): the local stack's buckets are read exactly as S3's."""
    keys: list[str] = []
    for page in aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def object_body(bucket: str, key: str) -> bytes:
    """An object's bytes, unzipped when Firehose gzipped them, so callers read rows either way."""
    data = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


#: Concurrent GETs while collecting a run's objects: each is a round trip to the local S3.
_GET_THREADS = 8


def object_bodies(bucket: str, keys: list[str]) -> list[bytes]:
    """The objects' bodies, in the order of ``keys``, fetched concurrently."""
    if len(keys) < 2:
        return [object_body(bucket, k) for k in keys]
    with ThreadPoolExecutor(max_workers=_GET_THREADS) as pool:
        return list(pool.map(lambda k: object_body(bucket, k), keys))


#: Objects per object_bodies_at_once request while exporting (frames: about 100 KB each).
_KEYS_AT_ONCE = 200


def object_bodies_at_once(endpoint_url: str, bucket: str, keys: list[str]) -> list[bytes]:
    """The objects' bodies, in the order of ``keys``, in one request to the local stack's moto
    (vidsift.local.moto_process.OBJECTS_PATH), not a GetObject each: the same bytes, without a
    botocore call and a moto request per object. For the local stack's own reading (the run's
    export), never the handlers'. A key that is gone raises, as its GetObject would."""
    request = urllib.request.Request(endpoint_url + OBJECTS_PATH, method="POST",
                                     data=json.dumps({"bucket": bucket, "keys": keys}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as resp:
        sizes = json.loads(resp.readline())["sizes"]
        bodies = [resp.read(n) if n > 0 else b"" for n in sizes]
    missing = [k for k, n in zip(keys, sizes, strict=True) if n < 0]
    if missing:
        raise FileNotFoundError(f"s3://{bucket}/{missing[0]}: no such key ({len(missing)} missing)")
    if any(len(b) != n for b, n in zip(bodies, sizes, strict=True)):
        raise OSError(f"s3://{bucket}: the local S3's answer ended early")
    return bodies


def analytics_rows(stack: LocalStack, table: str) -> list[dict[str, Any]]:
    """Every row Firehose delivered for a table (objects are newline-delimited JSON)."""
    bucket = stack.names.bucket("analytics")
    rows = []
    for body in object_bodies(bucket, object_keys(bucket, f"{table}/")):
        rows.extend(json.loads(line) for line in body.splitlines() if line.strip())
    return rows


@dataclass
class RunResults:
    """Everything a local run left in the stack (summaries, error records, dead letters and the
    rows of every table), read once so it can be exported before the stack goes away."""

    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)  # by video_id
    errors: list[dict[str, Any]] = field(default_factory=list)
    dlq: dict[str, list[str]] = field(default_factory=dict)  # stage -> subjects
    people: list[dict[str, Any]] = field(default_factory=list)
    faces: list[dict[str, Any]] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)
    #: Lines and zones (vidsift.stages.counting): one object per video and table, read the same way.
    crossings: list[dict[str, Any]] = field(default_factory=list)
    zone_visits: list[dict[str, Any]] = field(default_factory=list)


def collect(stack: LocalStack) -> RunResults:
    """Everything the run left in the local stack (summaries, error records, dead letters, every
    table's rows), read once, before the stack and its buckets go away."""
    res = RunResults()
    frames = stack.names.bucket("frames")
    for body in object_bodies(frames, [k for k in object_keys(frames) if k.endswith("/summary.json")]):
        doc = json.loads(body)
        res.summaries[doc["video_id"]] = doc
    analytics = stack.names.bucket("analytics")
    errors_prefix = contract.load()["analytics_prefixes"]["errors"]
    res.errors = [json.loads(b) for b in object_bodies(analytics, object_keys(analytics, errors_prefix))]
    sqs = aws.client("sqs")
    for stage, url in stack.dlq_urls.items():
        subjects: list[str] = []
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                try:
                    subjects.extend(r.uri for r in parse_s3_message(m["Body"]))
                except ValueError:
                    subjects.append(f"sqs:{m['MessageId']}")
        if subjects:
            res.dlq[stage] = subjects
    res.people = analytics_rows(stack, "people")
    res.faces = analytics_rows(stack, "faces")
    res.tracks = analytics_rows(stack, "tracks")
    res.crossings = analytics_rows(stack, "crossings")
    res.zone_visits = analytics_rows(stack, "zone_visits")
    return res


def _dedup(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Firehose delivers at least once: keep one row per record_id (the latest)."""
    by_id = {r["record_id"]: r for r in sorted(rows, key=lambda r: r.get("processed_at") or "")}
    return list(by_id.values())


def export_frames(stack: LocalStack, out: Path, skip: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """The frames with people (the people bucket's JPEGs) to ``out/frames/``, but the keys in
    ``skip`` (written by an earlier pass); returns the keys written now. A run starts a pass
    once tracking begins (its frames with people are copied by then) and the final export
    fetches only what came after. The keys are listed as S3 lists them; their bytes come
    200 to a request (object_bodies_at_once), not a GetObject each."""
    people_bucket = stack.names.bucket("people")
    # The tracks' face work (JSON) is the pipeline's, not a result.
    suffix = contract.load()["frame_suffix"]
    keys = [k for k in object_keys(people_bucket) if k.endswith(suffix) and k not in skip]
    for start in range(0, len(keys), _KEYS_AT_ONCE):  # a long video's frames: bounded memory per request
        chunk = keys[start:start + _KEYS_AT_ONCE]
        for key, body in zip(chunk, object_bodies_at_once(stack.endpoint_url, people_bucket, chunk), strict=True):
            path = out / "frames" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
    return set(keys)


def export(stack: LocalStack, res: RunResults, out: Path, frames_done: set[str] | frozenset[str] = frozenset()) -> None:
    """Write the collected run under ``out`` in the analytics bucket's layout (one object per table,
    day and video), so DuckDB reads the folder with the same tables Athena reads in the cloud."""
    for table, rows in (("people", res.people), ("faces", res.faces), ("tracks", res.tracks),
                        ("crossings", res.crossings), ("zone_visits", res.zone_visits)):
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for row in _dedup(rows):
            groups[(row["dt"], row["video_id"])].append(row)
        for (dt, video), group in groups.items():
            group.sort(key=lambda r: (r.get("frame_index", 0), r.get("face_index", 0), r.get("track_id") or ""))
            path = out / "analytics" / table / f"dt={dt}" / f"{video}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r, sort_keys=False) + "\n" for r in group))
    export_frames(stack, out, skip=frames_done)
    for video, summary in res.summaries.items():
        path = out / "summaries" / f"{video}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=1, sort_keys=True))
