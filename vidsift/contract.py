"""Typed access to contract.json, the one place where names are defined.

serverless.yml reads the same file, so a name changed here changes everywhere;
nothing in Python should spell a bucket, queue, stream or column name itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CONTRACT_PATH = Path(__file__).with_name("contract.json")

STAGES = ("split_frames", "detect_people", "analyze_faces")
TABLES = ("people", "faces")

#: moto's default account id; the local stack's names use it as AWS would use yours.
LOCAL_ACCOUNT = "123456789012"
LOCAL_STAGE = "local"


@lru_cache(maxsize=1)
def load() -> dict[str, Any]:
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

    def function_env(self) -> dict[str, str]:
        """The environment every function gets (same keys as serverless.yml sets)."""
        return {
            "FRAMES_BUCKET": self.bucket("frames"),
            "PEOPLE_BUCKET": self.bucket("people"),
            "ANALYTICS_BUCKET": self.bucket("analytics"),
            "PEOPLE_STREAM": self.stream("people"),
            "FACES_STREAM": self.stream("faces"),
            "ENDPOINT_NAME": self.endpoint,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
        }


def local_names() -> ResourceNames:
    return ResourceNames(stage=LOCAL_STAGE, account=LOCAL_ACCOUNT)
