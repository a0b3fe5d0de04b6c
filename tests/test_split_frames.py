"""split_frames against a real local S3/SQS: events come from S3's own notifications."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from vidsift import aws
from vidsift.core import ids, keys
from vidsift.local.dispatcher import Dispatcher, LocalContext
from vidsift.local.stack import LocalStack

STAGE = "split_frames"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(with_models=False) as s:
        yield s


def _event(stack: LocalStack, want: int) -> dict:
    """Receive what S3 sent to the stage queue and shape it as Lambda would."""
    d = Dispatcher(stack, handlers={s: (lambda e, c: {}) for s in ("split_frames", "detect_people",
                                                                   "analyze_faces")})
    msgs = []
    for _ in range(20):
        # Hidden for the function's timeout, as Lambda's poller hides them: the test calls the
        # handler itself, and a message must not come back to a dispatcher meanwhile.
        msgs += aws.client("sqs").receive_message(QueueUrl=stack.queue_urls[STAGE], MaxNumberOfMessages=10,
                                                   WaitTimeSeconds=0, VisibilityTimeout=900).get("Messages", [])
        if len(msgs) >= want:
            break
    assert len(msgs) == want, [json.loads(m["Body"]).get("Records", [{}])[0].get("s3", {}).get("object") for m in msgs]
    return d._event(STAGE, msgs)


def _frames(stack: LocalStack, video: str) -> list[str]:
    resp = aws.client("s3").list_objects_v2(Bucket=stack.names.bucket("frames"), Prefix=f"{video}/")
    return sorted(o["Key"] for o in resp.get("Contents", []) if o["Key"].endswith(".jpg"))


def _purge(stack: LocalStack) -> None:
    """Empty every queue first: S3's own test events, and what a call above left, must not be
    taken for this test's messages (between tests conftest settles the stack too)."""
    stack.settle()


@pytest.mark.parametrize("name", ["with space.mp4", "plus+sign.mp4", "caf\u00e9 \u6620\u50cf.mp4",
                                  "deep/er/and/deeper/clip.mp4"])
def test_keys_with_spaces_unicode_and_prefixes(stack: LocalStack, short_video: Path, name: str) -> None:
    from functions import split_frames

    _purge(stack)
    key = f"uploads/{name}"
    s3 = aws.client("s3")
    s3.upload_file(str(short_video), stack.names.bucket("raw"), key, ExtraArgs={
        "Metadata": {"camera-id": "cam%201", "recorded-at": "2026-03-01T10:00:00Z"}})
    etag = s3.head_object(Bucket=stack.names.bucket("raw"), Key=key)["ETag"].strip('"')
    result = split_frames.handler(_event(stack, 1), LocalContext("split", 900))
    assert result == {"batchItemFailures": []}
    video = ids.video_id(stack.names.bucket("raw"), key, etag)
    frames = _frames(stack, video)
    assert frames == [keys.frame_key(video, i) for i in range(3)]
    head = s3.head_object(Bucket=stack.names.bucket("frames"), Key=frames[2])
    from vidsift.core.records import FrameMeta

    meta = FrameMeta.from_s3(head["Metadata"])
    assert meta.source_key == key and meta.camera_id == "cam 1" and meta.frame_index == 2
    assert meta.captured_at == "2026-03-01T10:00:02.000Z"
    summary = json.loads(s3.get_object(Bucket=stack.names.bucket("frames"),
                                       Key=keys.summary_key(video))["Body"].read())
    assert summary["frames_sampled"] == 3 and summary["bytes_read"] == short_video.stat().st_size


def test_one_bad_message_fails_alone(stack: LocalStack, short_video: Path, tmp_path: Path) -> None:
    from functions import split_frames

    _purge(stack)
    s3 = aws.client("s3")
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video at all\n" * 10)
    s3.upload_file(str(short_video), stack.names.bucket("raw"), "uploads/good-1.mp4")
    s3.upload_file(str(bad), stack.names.bucket("raw"), "uploads/bad.mp4")
    s3.upload_file(str(short_video), stack.names.bucket("raw"), "uploads/good-2.mp4")
    event = _event(stack, 3)
    # the batch also carries a malformed message
    event["Records"].append({**event["Records"][0], "messageId": "garbage", "body": "{not json"})
    result = split_frames.handler(event, LocalContext("split", 900))
    by_key = {unquote_plus(json.loads(r["body"])["Records"][0]["s3"]["object"]["key"]): r["messageId"]
              for r in event["Records"] if r["messageId"] != "garbage"}
    assert by_key and result["batchItemFailures"] == []  # bad inputs: recorded once, acknowledged
    errors = aws.client("s3").list_objects_v2(Bucket=stack.names.bucket("analytics"), Prefix="errors/split_frames/")
    reasons = [json.loads(s3.get_object(Bucket=stack.names.bucket("analytics"), Key=o["Key"])["Body"].read())
               for o in errors["Contents"]]
    assert any(r["subject"].endswith("uploads/bad.mp4") and "not a readable video" in r["reason"] for r in reasons)
    assert any(r["subject"] == "sqs:garbage" for r in reasons)


def test_replayed_event_changes_nothing(stack: LocalStack, short_video: Path) -> None:
    from functions import split_frames

    _purge(stack)
    s3 = aws.client("s3")
    s3.upload_file(str(short_video), stack.names.bucket("raw"), "uploads/replay.mp4")
    event = _event(stack, 1)
    split_frames.handler(event, LocalContext("split", 900))
    etag = s3.head_object(Bucket=stack.names.bucket("raw"), Key="uploads/replay.mp4")["ETag"].strip('"')
    video = ids.video_id(stack.names.bucket("raw"), "uploads/replay.mp4", etag)
    before = {k: s3.head_object(Bucket=stack.names.bucket("frames"), Key=k)["LastModified"]
              for k in _frames(stack, video)}
    _purge(stack)
    assert split_frames.handler(event, LocalContext("split", 900)) == {"batchItemFailures": []}
    after = {k: s3.head_object(Bucket=stack.names.bucket("frames"), Key=k)["LastModified"]
             for k in _frames(stack, video)}
    assert after == before  # idempotency: the replay did not even rewrite the frames
    sqs = aws.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=stack.queue_urls["detect_people"],
                                     AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"  # and so sent nothing downstream


def test_deleted_object_is_a_clear_error(stack: LocalStack, short_video: Path) -> None:
    from functions import split_frames

    _purge(stack)
    s3 = aws.client("s3")
    s3.upload_file(str(short_video), stack.names.bucket("raw"), "uploads/gone.mp4")
    s3.delete_object(Bucket=stack.names.bucket("raw"), Key="uploads/gone.mp4")
    event = _event(stack, 1)
    result = split_frames.handler(event, LocalContext("split", 900))
    assert result["batchItemFailures"] == []  # a permanent bad input: acknowledged, not retried
    errors = aws.client("s3").list_objects_v2(Bucket=stack.names.bucket("analytics"), Prefix="errors/split_frames/")
    assert any(json.loads(s3.get_object(Bucket=stack.names.bucket("analytics"), Key=o["Key"])["Body"].read())
               ["subject"].endswith("uploads/gone.mp4") for o in errors["Contents"])


# --- streaming, fan-out, dedup and truncation through S3 -------------------------------------------


def _upload(stack: LocalStack, path: Path, key: str, metadata: dict[str, str] | None = None) -> str:
    s3 = aws.client("s3")
    s3.upload_file(str(path), stack.names.bucket("raw"), key, ExtraArgs={"Metadata": metadata or {}})
    etag = s3.head_object(Bucket=stack.names.bucket("raw"), Key=key)["ETag"].strip('"')
    return ids.video_id(stack.names.bucket("raw"), key, etag)


def _summary(stack: LocalStack, video: str) -> dict:
    body = aws.client("s3").get_object(Bucket=stack.names.bucket("frames"), Key=keys.summary_key(video))["Body"]
    return json.loads(body.read())


def _frame_metas(stack: LocalStack, video: str) -> list[tuple[int, float, bytes]]:
    from vidsift.core.records import FrameMeta

    s3, bucket, out = aws.client("s3"), stack.names.bucket("frames"), []
    for key in _frames(stack, video):
        obj = s3.get_object(Bucket=bucket, Key=key)
        meta = FrameMeta.from_s3(obj["Metadata"])
        assert key == keys.frame_key(video, meta.frame_index)
        out.append((meta.frame_index, meta.frame_time_s, obj["Body"].read()))
    return out


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vidsift.testing.samples import Segment, make_video

    photos = ["coffee", "astronaut", "chelsea", "rocket", "camera", "grace_hopper", "coffee", "chelsea"]
    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", [Segment(p, 5) for p in photos], fps=10,
                      width=320, height=240)


class _NoDiskWrites:
    """Fails any attempt to open a file for writing or make a temporary file (the way a
    download to /tmp would start), from any thread but moto's request threads (S3 itself,
    which runs in this process here: it spools request bodies)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import builtins
        import io
        import os
        import tempfile
        import threading

        self.attempts: list[str] = []

        def ours() -> bool:
            return "process_request_thread" not in threading.current_thread().name

        real_open, real_os_open = builtins.open, os.open

        def guarded_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
            if ours() and any(c in str(mode) for c in "wax+"):
                self._refuse(f"open({file!r}, {mode!r})")
            return real_open(file, mode, *args, **kwargs)

        def guarded_os_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
            if ours() and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                self._refuse(f"os.open({path!r})")
            return real_os_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(io, "open", guarded_open)
        monkeypatch.setattr(os, "open", guarded_os_open)
        for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile"):
            real = getattr(tempfile, name)

            def guarded(*a, _n=name, _real=real, **k):  # type: ignore[no-untyped-def]
                if ours():
                    self._refuse(f"tempfile.{_n}")
                return _real(*a, **k)

            monkeypatch.setattr(tempfile, name, guarded)

    def _refuse(self, what: str) -> None:
        self.attempts.append(what)
        raise PermissionError(f"test: the function may not write to disk ({what})")


def test_video_is_streamed_from_s3_never_written_to_disk(stack: LocalStack, long_clip: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import split_frames
    from vidsift.stages import splitting

    _purge(stack)
    block = 64 * 1024  # small blocks, so the file spans many of them and the cache (4 blocks) holds few
    monkeypatch.setattr(splitting.Source, "reader", lambda self: aws.S3RangeReader(
        self.ref.bucket, self.ref.key, size=self.size, etag=self.etag, block_size=block, max_blocks=4))
    every = _upload(stack, long_clip, "uploads/stream-all.mp4", {"fps": "1"})
    sparse = _upload(stack, long_clip, "uploads/stream-sparse.mp4", {"fps": "0.05"})
    event = _event(stack, 2)
    guard = _NoDiskWrites(monkeypatch)
    result = split_frames.handler(event, LocalContext("split", 900))
    monkeypatch.undo()
    assert result == {"batchItemFailures": []} and guard.attempts == []
    size = long_clip.stat().st_size
    assert size > 8 * block  # the premise: many blocks, more than the cache holds
    whole, few = _summary(stack, every), _summary(stack, sparse)
    assert whole["frames_kept"] == 40 and [i for i, *_ in _frame_metas(stack, every)] == list(range(40))
    assert size <= whole["bytes_read"] <= size + 2 * block  # each block fetched about once
    assert few["frames_kept"] == 2 and few["strategy"] == ["seek"]
    assert few["bytes_read"] < size / 2  # seeking skipped the GOPs no sample needed: never fetched


def test_long_video_fans_out_into_segments(stack: LocalStack, people_video: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import split_frames
    from vidsift.core.frames import SamplingOptions, sample_frames

    _purge(stack)
    monkeypatch.setenv("SEGMENT_SECONDS", "2")
    video = _upload(stack, people_video, "uploads/fan out.mp4")
    assert split_frames.handler(_event(stack, 1), LocalContext("split", 900)) == {"batchItemFailures": []}
    assert _frames(stack, video) == []  # the first invocation only planned and queued
    noop = {"detect_people": lambda e, c: {}, "analyze_faces": lambda e, c: {}}
    d = Dispatcher(stack, handlers={"split_frames": split_frames.handler, **noop})
    summary_key = keys.summary_key(video)
    summaries_seen = []
    while d.poll("split_frames"):
        listed = aws.client("s3").list_objects_v2(Bucket=stack.names.bucket("frames"), Prefix=summary_key)
        summaries_seen.append(listed.get("KeyCount", 0))
    assert d.stats["split_frames"].invocations == 3 and d.stats["split_frames"].failed == 0
    assert summaries_seen == [0, 0, 1]  # the video is complete, and summarised, only with its last segment
    one_pass = [(f.index, f.time_s, f.jpeg) for f in sample_frames(str(people_video), SamplingOptions(fps=1))]
    assert _frame_metas(stack, video) == one_pass  # same indices, times and pictures as one pass
    summary = _summary(stack, video)
    assert (summary["segments"], summary["frames_sampled"], summary["frames_kept"]) == (3, 6, 6)
    assert [s["start_s"] for s in summary["timings"]["per_segment"]] == [0.0, 2.0, 4.0]
    # a redelivered segment message is recognised and changes nothing
    s3 = aws.client("s3")
    stamp = s3.head_object(Bucket=stack.names.bucket("frames"), Key=keys.frame_key(video, 3))["LastModified"]
    task = json.loads(s3.get_object(Bucket=stack.names.bucket("frames"),
                                    Key=f"{video}/segments/00001.json")["Body"].read())
    from vidsift.core.segments import SegmentTask

    msg = SegmentTask(bucket=stack.names.bucket("raw"), key="uploads/fan out.mp4", etag=_etag(stack, "fan out.mp4"),
                      size=people_video.stat().st_size, start_s=task["start_s"], end_s=task["end_s"], segment=1,
                      segments=3, options={"fps": 1.0, "keyframes": False, "jpeg_quality": 90, "max_side": 1920,
                                           "max_bytes": 5 * 1024 * 1024 - 1024, "dedup_distance": 0})
    aws.client("sqs").send_message(QueueUrl=stack.queue_urls[STAGE], MessageBody=json.dumps(msg.to_message()))
    assert d.poll("split_frames") == 1 and d.stats["split_frames"].failed == 0
    assert s3.head_object(Bucket=stack.names.bucket("frames"), Key=keys.frame_key(video, 3))["LastModified"] == stamp


def _etag(stack: LocalStack, name: str) -> str:
    head = aws.client("s3").head_object(Bucket=stack.names.bucket("raw"), Key=f"uploads/{name}")
    return str(head["ETag"]).strip('"')


def test_dedup_counts_skipped_frames_in_the_summary(stack: LocalStack, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from test_frames import noisy_photo, write_clip

    from functions import split_frames

    _purge(stack)
    clip = write_clip(tmp_path / "static.mp4", [i * 0.25 for i in range(24)], draw=noisy_photo("coffee", 1))
    monkeypatch.setenv("DEDUP", "on")
    video = _upload(stack, clip, "uploads/static.mp4")
    assert split_frames.handler(_event(stack, 1), LocalContext("split", 900)) == {"batchItemFailures": []}
    summary = _summary(stack, video)
    assert (summary["frames_sampled"], summary["frames_kept"], summary["duplicates_skipped"]) == (6, 1, 5)
    assert _frames(stack, video) == [keys.frame_key(video, 0)]


def test_truncated_video_keeps_its_frames_and_fails_once(stack: LocalStack, people_video: Path,
                                                         tmp_path: Path) -> None:
    import subprocess

    import imageio_ffmpeg

    from functions import split_frames

    _purge(stack)
    faststart = tmp_path / "faststart.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(people_video), "-c", "copy",
                    "-movflags", "+faststart", str(faststart)], check=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[: int(faststart.stat().st_size * 0.85)])
    video = _upload(stack, cut, "uploads/cut short.mp4")
    result = split_frames.handler(_event(stack, 1), LocalContext("split", 900))
    assert result["batchItemFailures"] == []  # recorded once, acknowledged: its frames are tracked
    kept = _frames(stack, video)
    assert 3 <= len(kept) < 6  # what was there before the cut is out
    summary = _summary(stack, video)
    assert summary["frames_kept"] == len(kept) and "truncated" in summary["errors"][0]
    s3 = aws.client("s3")
    errors = s3.list_objects_v2(Bucket=stack.names.bucket("analytics"), Prefix="errors/split_frames/")["Contents"]
    reasons = [json.loads(s3.get_object(Bucket=stack.names.bucket("analytics"), Key=o["Key"])["Body"].read())
               for o in errors]
    assert any(r["subject"].endswith("cut short.mp4") and "truncated" in r["reason"] for r in reasons)
