"""The uploader against a local S3 (moto) behind a fault-injecting proxy on 127.0.0.1.

What must hold whatever the network does: every clip arrives exactly once under its random
key, byte for byte, with its metadata and server-side encryption; a file the queue owns is
deleted only after S3 confirmed it; a killed uploader resumes (a multipart upload included)
without sending confirmed parts again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from edge.config import EdgeConfig
from edge.queue import DONE, UploadQueue
from edge.testing import CORRUPT, CUT, DROP, ERROR_500, PASS, REFUSE, FaultProxy, reset_moto, start_moto, use_local_s3
from edge.uploader import Uploader
from vidsift.contract import local_names
from vidsift.core.uploads import build_metadata

BUCKET = local_names().bucket("raw")
MiB = 1024 * 1024
KEY_RE = re.compile(r"^uploads/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.mp4$")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def moto_port():
    server, port = start_moto()
    yield port
    server.stop()


@pytest.fixture
def s3(moto_port, monkeypatch, tmp_path):
    """Dummy credentials, the endpoint pointed at a fault proxy in front of moto, a fresh bucket.
    Returns (admin client talking to moto directly, proxy)."""
    reset_moto(moto_port)
    proxy = FaultProxy(moto_port).start()
    use_local_s3(monkeypatch, tmp_path, proxy.url)
    admin = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}")
    admin.create_bucket(Bucket=BUCKET)
    # As the stack's buckets (and every S3 bucket since 2023): SSE-S3 by default, which the
    # edge's default (sse = "bucket") relies on; moto applies no encryption without it.
    admin.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    yield admin, proxy
    proxy.stop()


def edge_config(tmp_path: Path, **kw) -> EdgeConfig:
    base = dict(
        bucket=BUCKET, camera_id="cam-door", device_id="dev-test", state_dir=tmp_path / "state",
        backoff_base_s=0.05, backoff_max_s=0.4, connect_timeout_s=2, read_timeout_s=10, s3_max_attempts=1,
        multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB, poll_s=0.05,
    )
    base.update(kw)
    return EdgeConfig(**base).validate()


def make_clip(folder: Path, name: str, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


def metadata(i: int) -> dict[str, str]:
    return build_metadata(camera_id="cam-door", device_id="dev-test",
                          recorded_at=datetime(2025, 5, 1, 12, 0, i, tzinfo=UTC))


def objects(admin) -> dict[str, dict]:
    resp = admin.list_objects_v2(Bucket=BUCKET)
    return {o["Key"]: o for o in resp.get("Contents", [])}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def drain(uploader: Uploader, timeout: float = 30) -> bool:
    return uploader.run(until_empty=True, deadline=time.monotonic() + timeout)


def test_outage_and_faults_every_clip_arrives_once_intact(s3, tmp_path):
    admin, proxy = s3
    cfg = edge_config(tmp_path)
    queue = UploadQueue(cfg.state_dir, cfg.disk_cap_bytes)
    spool = tmp_path / "spool"
    files = [make_clip(spool, f"clip{i}.mp4", 150_000 + i * 10_000) for i in range(5)]
    files.append(make_clip(spool, "long.mp4", 12 * MiB))  # multipart: 5 + 5 + 2 MiB
    expected = {}
    for i, f in enumerate(files):
        clip = queue.enqueue(f, metadata(i), owned=True)
        expected[clip.key] = (sha(f.read_bytes()), metadata(i))

    # The network is down when the uploader starts; then S3 answers with every kind of fault
    # for a while (500s, lost replies, connections cut mid-body), then works again.
    faults = [ERROR_500, DROP, CUT, PASS, ERROR_500, CUT, PASS, DROP, PASS, CUT, ERROR_500, PASS, CUT, DROP]
    seen = {"n": 0}

    def plan(_req):
        seen["n"] += 1
        return faults[seen["n"] - 1] if seen["n"] <= len(faults) else PASS

    proxy.mode = REFUSE
    uploader = Uploader(queue, cfg)
    worker = threading.Thread(target=drain, args=(uploader, 60))
    worker.start()
    time.sleep(0.6)
    proxy.plan = plan
    proxy.mode = PASS
    worker.join(70)
    assert not worker.is_alive()

    # The faults really happened.
    for fault in (REFUSE, ERROR_500, DROP, CUT):
        assert proxy.count(lambda r, f=fault: r.fault == f) >= 1, fault
    assert any(c.attempts > 0 for c in queue.all())
    # Exactly once, intact, with metadata and SSE, under random keys; local copies gone.
    stored = objects(admin)
    assert set(stored) == set(expected)
    for key, (digest, md) in expected.items():
        assert KEY_RE.match(key), key
        obj = admin.get_object(Bucket=BUCKET, Key=key)
        assert sha(obj["Body"].read()) == digest
        assert obj["Metadata"] == md
        assert obj["ServerSideEncryption"] == "AES256"
    assert all(c.state == DONE for c in queue.all())
    assert not any(f.exists() for f in files)
    assert len({k for k in stored}) == len(files)
    assert not any(f.stem in k for k in stored for f in files)  # nothing of the file name in the key


def test_corruption_in_transit_is_caught_by_the_checksum_and_resent(s3, tmp_path, caplog):
    admin, proxy = s3
    cfg = edge_config(tmp_path)
    queue = UploadQueue(cfg.state_dir)
    small = make_clip(tmp_path / "in", "a.mp4", 300_000)
    big = make_clip(tmp_path / "in", "b.mp4", 11 * MiB)
    digests = {queue.enqueue(p, metadata(0), owned=False).key: sha(p.read_bytes()) for p in (small, big)}
    corrupted = {"put": 0, "part": 0}

    def plan(req):  # flip a byte in the first single PUT and in the first part of the big one
        kind = "part" if req.is_part else "put" if req.method == "PUT" else None
        if kind and corrupted[kind] == 0:
            corrupted[kind] = 1
            return CORRUPT
        return None

    proxy.plan = plan
    with caplog.at_level(logging.WARNING, logger="edge.uploader"):
        assert drain(Uploader(queue, cfg))
    assert corrupted == {"put": 1, "part": 1}
    assert caplog.text.count("ChecksumMismatch") == 2
    for key, digest in digests.items():
        assert sha(admin.get_object(Bucket=BUCKET, Key=key)["Body"].read()) == digest
    assert small.exists() and big.exists()  # not owned by the queue: left in place


def test_kms_encryption_on_single_and_multipart_uploads(s3, tmp_path):
    admin, _ = s3
    cfg = edge_config(tmp_path, sse="aws:kms", kms_key_id="alias/vidsift-edge")
    queue = UploadQueue(cfg.state_dir)
    keys = [queue.enqueue(make_clip(tmp_path / "in", n, size), metadata(0), owned=True).key
            for n, size in (("s.mp4", 1000), ("m.mp4", 6 * MiB))]
    assert drain(Uploader(queue, cfg))
    for key in keys:
        head = admin.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"].endswith("alias/vidsift-edge")


def _queue_db(state: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{state / 'queue.sqlite3'}?mode=ro", uri=True, timeout=5)


def test_killed_uploader_resumes_queue_and_multipart_upload(s3, tmp_path):
    admin, proxy = s3
    state = tmp_path / "state"
    big = make_clip(tmp_path / "in", "big.mp4", 12 * MiB)
    smalls = [make_clip(tmp_path / "in", f"s{i}.mp4", 50_000) for i in range(2)]
    digests = {p.name: sha(p.read_bytes()) for p in (big, *smalls)}
    args = [sys.executable, "-m", "edge.cli", "upload", str(big), *map(str, smalls), "--delete",
            "--bucket", BUCKET, "--state-dir", str(state), "--camera-id", "cam-door", "--device-id", "dev-test",
            "--multipart-threshold-bytes", "5MiB", "--part-size-bytes", "5MiB", "--backoff-base-s", "0.05",
            "--backoff-max-s", "0.4", "--s3-max-attempts", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proxy.bytes_per_s = 8 * MiB  # slow enough to kill it between parts
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        parts = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if (state / "queue.sqlite3").exists():
                try:
                    with _queue_db(state) as db:
                        parts = db.execute("SELECT COUNT(*) FROM parts").fetchone()[0]
                except sqlite3.OperationalError:
                    parts = 0
            if parts >= 1:
                break
            time.sleep(0.02)
        assert parts >= 1, proc.stderr.read().decode() if proc.poll() is not None else "no part confirmed in 30 s"
        proc.send_signal(signal.SIGKILL)  # a power cut: no cleanup of any kind
    finally:
        proc.wait(10)
    with _queue_db(state) as db:
        upload_id_before = db.execute("SELECT upload_id FROM clips WHERE path LIKE '%big.mp4'").fetchone()[0]
    assert upload_id_before
    assert not any(k.endswith(".mp4") and admin.head_object(Bucket=BUCKET, Key=k)["ContentLength"] == 12 * MiB
                   for k in objects(admin))  # the big one had not completed

    proxy.bytes_per_s = None
    done = subprocess.run([*args[:4], *args[4 + 3:]], cwd=REPO, env=env, capture_output=True, timeout=60)
    # the second run names no files: it only resumes the queue
    assert done.returncode == 0, done.stderr.decode()
    assert "resuming multipart upload" in done.stderr.decode()

    creates = proxy.count(lambda r: r.method == "POST" and r.target.endswith("?uploads"))
    part1 = proxy.count(lambda r: r.is_part and r.part_number() == 1)
    list_parts = proxy.count(lambda r: r.method == "GET" and "uploadId=" in r.target)
    assert creates == 1 and part1 == 1 and list_parts >= 1
    stored = objects(admin)
    assert len(stored) == 3
    got = {sha(admin.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in stored}
    assert got == set(digests.values())
    assert not any(p.exists() for p in (big, *smalls))


def test_upload_command_probes_metadata_and_never_uploads_a_file_twice(s3, tmp_path, capsys):
    from edge.cli import main
    from edge.testing import people_video

    admin, proxy = s3
    video = tmp_path / "Front Door 2025-06-01 Alice.mp4"  # personal details in a name stay local
    people_video(video, [("astronaut", 1.0)], fps=10, size=(160, 120))
    argv = ["upload", str(video), "--bucket", BUCKET, "--state-dir", str(tmp_path / "state"),
            "--camera-id", "front", "--device-id", "pi-7", "--sample-fps", "2"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0  # the same file again: recognised, not sent again
    second = capsys.readouterr().out
    (key,) = objects(admin)
    assert KEY_RE.match(key) and f"s3://{BUCKET}/{key}" in first and f"s3://{BUCKET}/{key}" in second
    assert proxy.count(lambda r: r.method == "PUT") == 1
    md = admin.head_object(Bucket=BUCKET, Key=key)["Metadata"]
    assert md["camera-id"] == "front" and md["device-id"] == "pi-7" and md["fps"] == "2"
    assert (md["frame-width"], md["frame-height"]) == ("160", "120")
    assert float(md["duration-s"]) == pytest.approx(1.0, abs=0.15)
    assert video.exists()  # `upload` leaves the user's files alone unless --delete
    assert main(["upload", str(tmp_path / "notes.txt"), "--bucket", BUCKET,
                 "--state-dir", str(tmp_path / "state")]) == 2


def test_a_clip_dropped_by_the_disk_cap_has_its_multipart_upload_aborted(s3, tmp_path):
    admin, proxy = s3
    cfg = edge_config(tmp_path, disk_cap_bytes=13 * MiB)
    queue = UploadQueue(cfg.state_dir, cfg.disk_cap_bytes)
    big = queue.enqueue(make_clip(tmp_path / "spool", "big.mp4", 12 * MiB), metadata(0), owned=True)
    # S3 takes part 1, then the link fails on part 2: the upload is left half done...
    proxy.plan = lambda r: REFUSE if r.is_part and r.part_number() == 2 else None
    uploader = Uploader(queue, cfg)
    assert uploader.upload_one(queue.next_due()) is False
    upload_id = queue.get(big.id).upload_id
    assert upload_id and admin.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    # ...and while offline, new clips push the queue over its cap: the oldest, big one goes.
    newer = queue.enqueue(make_clip(tmp_path / "spool", "new.mp4", 2 * MiB), metadata(1), owned=True)
    assert queue.get(big.id).state == "dropped" and not big.path.exists()
    proxy.plan = None
    assert drain(Uploader(queue, cfg))
    assert proxy.count(lambda r: r.method == "DELETE" and f"uploadId={upload_id}" in r.target) == 1
    assert not admin.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    assert list(objects(admin)) == [newer.key]


def test_a_snapshot_queued_during_a_long_clip_goes_between_its_parts(s3, tmp_path):
    """The alert fast lane must not wait for a clip already on its way: a snapshot queued while
    part 1 of a 3-part clip is sent arrives before the clip is completed."""
    admin, _proxy = s3
    cfg = edge_config(tmp_path)
    queue = UploadQueue(cfg.state_dir, cfg.disk_cap_bytes)
    spool = tmp_path / "spool"
    clip = queue.enqueue(make_clip(spool, "long.mp4", 12 * MiB), metadata(0), owned=True)
    uploader = Uploader(queue, cfg)
    order: list[str] = []
    snapshot: dict[str, object] = {}

    def before_part(params, **_):
        if params["PartNumber"] == 1 and not snapshot:
            snapshot["clip"] = queue.enqueue(make_clip(spool, "snap.jpg", 30_000), metadata(1), owned=True,
                                             content_type="image/jpeg", key="uploads/snapshots/s.jpg",
                                             priority=clip.priority + 10)

    def after(event_name, **_):
        order.append(event_name.rsplit(".", 1)[-1])

    uploader.s3.meta.events.register("before-parameter-build.s3.UploadPart", before_part)
    for op in ("PutObject", "UploadPart", "CompleteMultipartUpload"):
        uploader.s3.meta.events.register(f"after-call.s3.{op}", after)
    assert drain(uploader)
    assert order == ["UploadPart", "PutObject", "UploadPart", "UploadPart", "CompleteMultipartUpload"]
    assert set(objects(admin)) == {clip.key, "uploads/snapshots/s.jpg"}
    assert queue.get(clip.id).state == DONE and queue.get(snapshot["clip"].id).state == DONE


def test_default_uploads_take_the_stacks_kms_key(s3, tmp_path):
    """A kms=true stack's raw bucket encrypts with its key by default; the edge, by default,
    asks for no encryption of its own (an AES256 header would override the key), and the
    single PUT and the multipart upload both end under that key (issue 26, item 10)."""
    admin, _ = s3
    key_id = boto3.client("kms", endpoint_url=admin.meta.endpoint_url, region_name="us-east-1").create_key(
        Description="stack data key")["KeyMetadata"]["Arn"]
    admin.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id},
         "BucketKeyEnabled": True}]})
    cfg = edge_config(tmp_path)
    assert cfg.sse == "bucket"
    queue = UploadQueue(cfg.state_dir)
    keys = [queue.enqueue(make_clip(tmp_path / "in", n, size), metadata(0), owned=True).key
            for n, size in (("s.mp4", 1000), ("m.mp4", 6 * MiB))]
    assert drain(Uploader(queue, cfg))
    for key in keys:
        head = admin.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_id
