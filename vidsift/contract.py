"""Typed access to contract.json, the one place where names are defined.

serverless.yml reads the same file, so a name changed here changes everywhere;
nothing in Python should spell a bucket, queue, stream or column name itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CONTRACT_PATH = Path(__file__).with_name("contract.json")

STAGES = ("split_frames", "detect_people", "track_people", "analyze_faces", "alert_faces")
#: The scheduled stalled-video sweeper (contract ``sweeper``: its name, schedule and threshold).
SWEEPER = "sweep_stalled"
#: Every Lambda function every stack has: the stages (each fed by its queue), recount (invoked
#: directly) and the sweeper (on a schedule). expire_visitors is deployed with visitors=true only.
FUNCTIONS = (*STAGES, "recount", SWEEPER)
TABLES = ("people", "faces", "tracks")
#: The tables of lines and zones: written as one object per video (contract count_tables), not
#: through Firehose, so a recount can replace them. ALL_TABLES: what Athena and DuckDB see.
COUNT_TABLES = ("crossings", "zone_visits")
ALL_TABLES = TABLES + COUNT_TABLES

#: moto's default account id; the local stack's names use it as AWS would use yours.
LOCAL_ACCOUNT = "123456789012"
LOCAL_STAGE = "local"


@lru_cache(maxsize=1)
def load() -> dict[str, Any]:
    """contract.json, parsed once per process: the one place every name is defined."""
    return json.loads(CONTRACT_PATH.read_text())


def columns(table: str) -> list[str]:
    """Record columns in order, partition keys last (as Athena shows them)."""
    spec = load()["tables"][table]
    return [c["Name"] for c in spec["columns"]] + [c["Name"] for c in spec["partition_keys"]]


def column_types(table: str) -> dict[str, str]:
    spec = load()["tables"][table]
    return {c["Name"]: c["Type"] for c in spec["columns"] + spec["partition_keys"]}


def stage(name: str) -> dict[str, Any]:
    return load()["stages"][name]


def function(name: str) -> dict[str, Any]:
    """A function's spec (handler, timeout_s, memory_mb, ephemeral_storage_mb): a stage's, a
    directly invoked function's (contract ``functions``) or the sweeper's (contract ``sweeper``)."""
    doc = load()
    if name == doc["sweeper"]["name"]:
        return dict(doc["sweeper"])
    return doc["stages"][name] if name in doc["stages"] else doc["functions"][name]


def upload_key(name: str) -> str:
    """The S3 user metadata key of an uploaded clip's or snapshot's ``name`` (e.g. camera_id):
    the edge writes and the pipeline reads the same spelling."""
    return str(load()["upload_metadata"][name])


@dataclass(frozen=True)
class Notification:
    """One S3 QueueConfiguration: new objects of ``bucket`` (a role) matching the filter go to
    ``stage``'s queue. ``prefix`` None means no prefix filter."""

    bucket: str
    stage: str
    prefix: str | None
    suffix: str
    event: str = "s3:ObjectCreated:*"


def notifications() -> list[Notification]:
    """Every bucket notification the contract implies, the rule plugins/contract-values.js also
    follows for serverless.yml: a raw source bucket sends each video suffix under
    raw_upload_prefix, the other source buckets the frame suffix (under the stage's
    source_prefix if it has one); a stage without a source bucket (track_people) is sent
    its messages by the stages before it; a stage's snapshot_bucket
    also sends the edge's snapshots (snapshot_prefix + frame suffix) to that stage."""
    doc = load()
    out: list[Notification] = []
    for name in STAGES:
        spec = stage(name)
        if spec["source_bucket"] == "raw":
            out += [Notification("raw", name, doc["raw_upload_prefix"], sfx) for sfx in doc["video_suffixes"]]
        elif spec["source_bucket"]:
            out.append(Notification(spec["source_bucket"], name, spec.get("source_prefix"), doc["frame_suffix"]))
        if spec.get("snapshot_bucket"):
            out.append(Notification(spec["snapshot_bucket"], name, doc["snapshot_prefix"], doc["frame_suffix"]))
    return out


def _events_overlap(a: str, b: str) -> bool:
    """s3:ObjectCreated:* covers s3:ObjectCreated:Put, and so on."""
    return a == b or (a.endswith(":*") and b.startswith(a[:-1])) or (b.endswith(":*") and a.startswith(b[:-1]))


def notification_overlaps(items: Iterable[Notification]) -> list[str]:
    """The pairs of one bucket's notifications S3 would refuse as overlapping: same event
    type, prefixes where one starts the other (or either absent) and suffixes where one ends
    the other (or either absent). S3 rejects the whole configuration then, so a new filter
    (the snapshot lane next to the video suffixes) must not overlap any other."""
    problems = []
    listed = list(items)
    for i, a in enumerate(listed):
        for b in listed[i + 1:]:
            if a.bucket != b.bucket or not _events_overlap(a.event, b.event):
                continue
            prefixes = a.prefix is None or b.prefix is None or a.prefix.startswith(b.prefix) or \
                b.prefix.startswith(a.prefix)
            suffixes = a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)
            if prefixes and suffixes:
                problems.append(f"{a.bucket}: {a.stage} ({a.prefix!r}, {a.suffix!r}) overlaps "
                                f"{b.stage} ({b.prefix!r}, {b.suffix!r})")
    return problems


@dataclass(frozen=True)
class ResourceNames:
    """Concrete names for one deployment stage in one account."""

    stage: str
    account: str

    @property
    def prefix(self) -> str:
        return f"{load()['service']}-{self.stage}"

    def bucket(self, role: str) -> str:
        return f"{self.prefix}-{self.account}-{load()['buckets'][role]}"

    def queue(self, stage_name: str) -> str:
        return f"{self.prefix}-{stage(stage_name)['queue']}"

    def dlq(self, stage_name: str) -> str:
        return f"{self.queue(stage_name)}-dlq"

    def stream(self, table: str) -> str:
        return f"{self.prefix}-{load()['streams'][table]}"

    @property
    def endpoint(self) -> str:
        return f"{self.prefix}-{load()['endpoint']}"

    @property
    def idempotency_table(self) -> str:
        return f"{self.prefix}-{load()['idempotency_table']}"

    @property
    def tracking_table(self) -> str:
        return f"{self.prefix}-{load()['tracking_table']}"

    def function_env(self) -> dict[str, str]:
        """The environment every function gets (same keys as serverless.yml sets)."""
        return {
            "RAW_BUCKET": self.bucket("raw"),
            "FRAMES_BUCKET": self.bucket("frames"),
            "PEOPLE_BUCKET": self.bucket("people"),
            "ANALYTICS_BUCKET": self.bucket("analytics"),
            "PEOPLE_STREAM": self.stream("people"),
            "FACES_STREAM": self.stream("faces"),
            "TRACKS_STREAM": self.stream("tracks"),
            "ENDPOINT_NAME": self.endpoint,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "TRACKING_TABLE": self.tracking_table,
        }


def local_names() -> ResourceNames:
    return ResourceNames(stage=LOCAL_STAGE, account=LOCAL_ACCOUNT)
