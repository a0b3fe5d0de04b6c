"""Parsing of S3 event notifications as they arrive in an SQS message body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

from vidsift.core.errors import BadInputError


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object an event names, with the version and ETag the work is keyed on, so a
    redelivered event or an overwritten key is recognised for what it is."""

    bucket: str
    key: str
    size: int
    etag: str
    #: The object version the event is about (a versioned bucket); "" when unversioned. Read
    #: by it, so overwriting a key before its first version is processed loses nothing.
    version_id: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_message(body: str) -> list[ObjectRef]:
    """Objects created, from one SQS message body; [] for S3's test event.

    S3 URL-encodes keys in notifications (a space arrives as ``+``, a real ``+`` as
    ``%2B``), so keys are decoded here once, and nowhere else.
    """
    try:
        doc = json.loads(body)
    except (TypeError, json.JSONDecodeError) as exc:
        raise BadInputError("SQS message", f"body is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise BadInputError("SQS message", "body is not a JSON object")
    if doc.get("Event") == "s3:TestEvent":
        return []
    records = doc.get("Records")
    if not isinstance(records, list):
        raise BadInputError("SQS message", "no S3 'Records' in the body")
    refs = []
    for rec in records:
        try:
            if not str(rec.get("eventName", "")).startswith("ObjectCreated"):
                continue
            s3 = rec["s3"]
            obj = s3["object"]
            refs.append(ObjectRef(
                bucket=s3["bucket"]["name"],
                key=unquote_plus(obj["key"]),
                size=int(obj.get("size", 0)),
                etag=str(obj.get("eTag", "")).strip('"'),
                version_id=str(obj.get("versionId") or ""),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError("SQS message", f"malformed S3 record ({exc!r})") from exc
    return refs
