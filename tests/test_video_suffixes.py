"""Uppercase video suffixes are picked up (issue 26, item 10): phones and action cameras
write clip.MP4 / clip.MOV, and S3's suffix filters are case-sensitive, so the raw bucket's
notifications list both cases (vidsift/contract.json video_suffixes), side by side with the
snapshot filter without overlapping it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidsift import aws, contract
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.stack import LocalStack


def test_both_cases_are_notified_and_nothing_overlaps() -> None:
    suffixes = contract.load()["video_suffixes"]
    assert {".MP4", ".MOV", ".mp4", ".mov"} <= set(suffixes)
    raw = [n for n in contract.notifications() if n.bucket == "raw" and n.stage == "split_frames"]
    assert sorted(n.suffix for n in raw) == sorted(suffixes)
    assert contract.notification_overlaps(contract.notifications()) == []


@pytest.mark.parametrize("suffix", [".MP4", ".MOV"])
def test_an_uppercase_clip_is_processed(local_stack: LocalStack, short_video: Path, suffix: str) -> None:
    s3 = aws.client("s3")
    frames = local_stack.names.bucket("frames")

    def frame_count() -> int:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=frames)
        return sum(1 for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".jpg"))

    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)
    before = frame_count()
    s3.put_object(Bucket=local_stack.names.bucket("raw"), Key=f"uploads/phone/clip{suffix}",
                  Body=short_video.read_bytes(), Metadata={"camera-id": "phone"})
    assert Dispatcher(local_stack).run_until_idle(timeout_s=180)
    assert frame_count() > before
