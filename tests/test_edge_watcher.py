"""The watched folder: only complete files, each uploaded once, even across restarts."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from edge.config import EdgeConfig
from edge.metadata import probe_video, recording_start
from edge.queue import DONE, UploadQueue
from edge.testing import people_video, reset_moto, start_moto, use_local_s3
from edge.uploader import Uploader
from edge.watcher import Watcher, open_for_writing
from vidsift.contract import local_names
from vidsift.core.uploads import build_metadata

BUCKET = local_names().bucket("raw")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("v") / "v.mp4"
    people_video(path, [("coffee", 1.0), ("astronaut", 1.0)], fps=10, size=(160, 120))
    return path.read_bytes()


@pytest.fixture(scope="module")
def moto_port():
    server, port = start_moto()
    yield port
    server.stop()


@pytest.fixture
def s3(moto_port, monkeypatch, tmp_path):
    reset_moto(moto_port)
    url = f"http://127.0.0.1:{moto_port}"
    use_local_s3(monkeypatch, tmp_path, url)
    admin = boto3.client("s3", endpoint_url=url)
    admin.create_bucket(Bucket=BUCKET)
    # SSE-S3 by default, as every S3 bucket (the edge's default sse = "bucket" asks for none).
    admin.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    return admin


def metadata_for(path: Path) -> dict[str, str]:
    info = probe_video(path)
    return build_metadata(camera_id="cam-yard", device_id="dev-w", recorded_at=recording_start(path, info), info=info)


def watcher(folder: Path, queue: UploadQueue, **kw) -> Watcher:
    return Watcher(folder, queue, metadata_for, settle_s=kw.pop("settle_s", 0.4), poll_s=0.05, **kw)


def scan_for(w: Watcher, seconds: float) -> list:
    found, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        found += w.scan()
        time.sleep(0.05)
    return found


def test_a_half_written_file_is_taken_only_once_complete(tmp_path, video_bytes):
    folder = tmp_path / "in"
    folder.mkdir()
    queue = UploadQueue(tmp_path / "state")
    w = watcher(folder, queue)
    target = folder / "cam.mp4"
    chunks = [video_bytes[i: i + 4096] for i in range(0, len(video_bytes), 4096)]
    step = 1.5 / len(chunks)  # writes trickle in for ~1.5 s, with pauses shorter than the settle time

    def write_slowly():
        # Reopened for every chunk, so between writes nobody holds it open: only the settle rule
        # (size and mtime unchanged for settle_s) can tell that it is not finished.
        for c in chunks:
            with open(target, "ab") as f:
                f.write(c)
            time.sleep(step)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    taken_while_writing = []
    while writer.is_alive():
        taken_while_writing += w.scan()
        time.sleep(0.05)
    assert taken_while_writing == []
    taken = scan_for(w, 1.2)
    assert len(taken) == 1
    assert taken[0].sha256 == hashlib.sha256(video_bytes).hexdigest()
    assert taken[0].size == len(video_bytes)


def test_a_file_still_open_for_writing_waits_even_when_quiet(tmp_path, video_bytes):
    folder = tmp_path / "in"
    folder.mkdir()
    queue = UploadQueue(tmp_path / "state")
    w = watcher(folder, queue, settle_s=0.2)
    path = folder / "open.mp4"
    f = open(path, "wb")  # noqa: SIM115 -- held open on purpose
    try:
        f.write(video_bytes)
        f.flush()
        assert open_for_writing({str(path.resolve())}) == {str(path.resolve())}
        assert scan_for(w, 0.8) == []  # quiet for 4x the settle time, but a writer holds it
    finally:
        f.close()
    assert open_for_writing({str(path.resolve())}) == set()
    assert len(scan_for(w, 0.5)) == 1


def test_temporary_and_non_video_names_are_ignored(tmp_path, video_bytes):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.mp4.part", ".hidden.mp4", "notes.txt", "b.mp4.tmp", "c.jpg"):
        (folder / name).write_bytes(video_bytes)
    queue = UploadQueue(tmp_path / "state")
    assert scan_for(watcher(folder, queue, settle_s=0.1), 0.4) == []


def _upload_all(queue: UploadQueue, cfg: EdgeConfig) -> None:
    assert Uploader(queue, cfg).run(until_empty=True, deadline=time.monotonic() + 20)


def test_watched_files_are_uploaded_once_with_metadata_across_restarts(s3, tmp_path, video_bytes):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    kept = folder / "sub" / "kept.MP4"
    kept.write_bytes(video_bytes)
    cfg = EdgeConfig(bucket=BUCKET, state_dir=tmp_path / "state", poll_s=0.05, backoff_base_s=0.05)
    queue = UploadQueue(cfg.state_dir)
    assert len(scan_for(watcher(folder, queue, keep=True), 0.7)) == 1
    _upload_all(queue, cfg)
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert kept.exists()  # keep=True: left in place, remembered instead
    obj = s3.get_object(Bucket=BUCKET, Key=key)
    assert obj["Body"].read() == video_bytes
    md = obj["Metadata"]
    assert md["camera-id"] == "cam-yard" and md["device-id"] == "dev-w"
    assert md["frame-width"] == "160" and md["frame-height"] == "120"
    assert abs(float(md["duration-s"]) - 2.0) < 0.15
    assert md["recorded-at"].endswith("Z")
    assert obj["ServerSideEncryption"] == "AES256"

    # Restart: a new process (new queue handle, new watcher) does not take the file again,
    # and a copy of the same bytes under another name is recognised too.
    (folder / "copy.mp4").write_bytes(video_bytes)
    queue2 = UploadQueue(cfg.state_dir)
    assert scan_for(watcher(folder, queue2, keep=True), 0.7) == []
    _upload_all(queue2, cfg)
    assert len(s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == 1


def test_watch_service_deletes_files_only_after_upload_and_stops_on_sigterm(s3, tmp_path, video_bytes):
    folder = tmp_path / "in"
    folder.mkdir()
    clip = folder / "door.mp4"
    clip.write_bytes(video_bytes)
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "edge.cli", "watch", str(folder), "--bucket", BUCKET, "--state-dir", str(state),
           "--settle-s", "0.3", "--poll-s", "0.05", "--camera-id", "cam-door"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while clip.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert not clip.exists()
        assert [c.state for c in UploadQueue(state).all()] == [DONE]  # deleted because S3 confirmed it
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read().decode()
    assert "SIGTERM: finishing the current clip and stopping" in log
    objs = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert len(objs) == 1 and s3.get_object(Bucket=BUCKET, Key=objs[0]["Key"])["Body"].read() == video_bytes
