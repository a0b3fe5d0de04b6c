import json

import pytest

from vidsift.core.errors import BadInputError
from vidsift.core.events import parse_s3_message


def s3_body(key: str, bucket: str = "b", event: str = "ObjectCreated:Put") -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": event, "s3": {
        "bucket": {"name": bucket}, "object": {"key": key, "size": 10, "eTag": "abc"}}}]})


@pytest.mark.parametrize(("encoded", "decoded"), [
    ("uploads/my+clip.mp4", "uploads/my clip.mp4"),
    ("uploads/a%2Bb.mp4", "uploads/a+b.mp4"),
    ("uploads/caf%C3%A9/%E6%98%A0%E5%83%8F.mp4", "uploads/café/映像.mp4"),
    ("uploads/deep/er/and/deeper/x.mov", "uploads/deep/er/and/deeper/x.mov"),
])
def test_keys_are_url_decoded_once(encoded: str, decoded: str) -> None:
    (ref,) = parse_s3_message(s3_body(encoded))
    assert ref.key == decoded
    assert ref.uri == f"s3://b/{decoded}"


def test_s3_test_event_is_ignored() -> None:
    assert parse_s3_message(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []


def test_removal_events_are_ignored() -> None:
    assert parse_s3_message(s3_body("k", event="ObjectRemoved:Delete")) == []


@pytest.mark.parametrize("body", ["not json", "[]", json.dumps({"foo": 1}),
                                  json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]})])
def test_malformed_messages_are_clear_errors(body: str) -> None:
    with pytest.raises(BadInputError, match="SQS message"):
        parse_s3_message(body)
