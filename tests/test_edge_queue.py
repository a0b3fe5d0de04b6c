"""The queue's own rules: WAL, backoff with jitter, the disk cap, dedupe, crash recovery."""

from __future__ import annotations

import logging
import random
import re
import time

from edge.queue import DONE, DROPPED, PENDING, UploadQueue, backoff_delay, random_key

UUID_KEY = re.compile(r"^uploads/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.mp4$")


def clip_file(folder, name, size, fill=None):
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(bytes([fill]) * size if fill is not None else random.randbytes(size))
    return p


def test_database_is_wal_and_survives_reopen(tmp_path):
    q = UploadQueue(tmp_path / "state")
    assert q.journal_mode() == "wal"
    clip = q.enqueue(clip_file(tmp_path, "a.mp4", 10), {"camera-id": "c"}, owned=True)
    q.close()
    again = UploadQueue(tmp_path / "state")
    assert [c.key for c in again.all()] == [clip.key]
    assert again.all()[0].metadata == {"camera-id": "c"}


def test_keys_are_random_uuid4_with_the_lowercased_suffix():
    keys = {random_key(".MP4") for _ in range(200)}
    assert len(keys) == 200
    assert all(UUID_KEY.match(k) for k in keys)


def test_backoff_grows_exponentially_with_bounded_jitter():
    rng = random.Random(1)
    for attempt in range(1, 12):
        full = min(60.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 0.5, 60.0, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len({round(d, 6) for d in delays}) > 40  # jittered, not lock-step
    assert backoff_delay(30, 0.5, 60.0, rng) <= 60.0


def test_disk_cap_drops_the_oldest_first_and_logs_it(tmp_path, caplog):
    q = UploadQueue(tmp_path / "state", disk_cap_bytes=2_500_000)
    files = [clip_file(tmp_path / "spool", f"c{i}.mp4", 1_000_000) for i in range(4)]
    with caplog.at_level(logging.WARNING, logger="edge.queue"):
        clips = [q.enqueue(f, {"recorded-at": f"2025-01-01T00:00:0{i}.000Z"}, owned=True) for i, f in enumerate(files)]
    states = [q.get(c.id).state for c in clips]
    assert states == [DROPPED, DROPPED, PENDING, PENDING]
    assert [f.exists() for f in files] == [False, False, True, True]
    assert q.pending_bytes() == 2_000_000
    for dropped in clips[:2]:
        assert dropped.key in caplog.text
    assert "disk cap of 2500000 bytes reached: dropped oldest" in caplog.text


def test_disk_cap_spares_the_clip_being_uploaded_and_files_it_does_not_own(tmp_path):
    q = UploadQueue(tmp_path / "state", disk_cap_bytes=1_500_000)
    mine = q.enqueue(clip_file(tmp_path, "a.mp4", 1_000_000), {}, owned=True)
    leased = q.next_due()
    assert leased is not None and leased.id == mine.id
    foreign = q.enqueue(clip_file(tmp_path, "user.mp4", 1_000_000), {}, owned=False)  # not counted
    newest = q.enqueue(clip_file(tmp_path, "b.mp4", 1_000_000), {}, owned=True)
    # Over the cap, but the oldest is leased to the uploader and the newest is never dropped.
    assert [q.get(c.id).state for c in (mine, foreign, newest)] == [PENDING, PENDING, PENDING]
    q.release(leased)
    third = q.enqueue(clip_file(tmp_path, "c.mp4", 1_000_000), {}, owned=True)
    assert [q.get(c.id).state for c in (mine, foreign, newest, third)] == [DROPPED, PENDING, DROPPED, PENDING]


def test_same_content_is_queued_once(tmp_path):
    q = UploadQueue(tmp_path / "state")
    a = clip_file(tmp_path, "a.mp4", 1000, fill=7)
    b = clip_file(tmp_path, "copy-of-a.mp4", 1000, fill=7)
    first = q.enqueue(a, {}, owned=False)
    second = q.enqueue(b, {}, owned=False)
    assert second.id == first.id and len(q.all()) == 1


def test_snapshots_go_first_and_failed_clips_wait_their_backoff(tmp_path):
    q = UploadQueue(tmp_path / "state")
    clip = q.enqueue(clip_file(tmp_path, "a.mp4", 10), {}, owned=True)
    snap = q.enqueue(clip_file(tmp_path, "s.jpg", 10), {}, owned=True, content_type="image/jpeg", priority=10)
    first = q.next_due()
    assert first is not None and first.id == snap.id
    second = q.next_due()
    assert second is not None and second.id == clip.id
    assert q.next_due() is None  # both leased
    assert q.mark_failed(second, "boom", delay_s=30) == 1
    q.mark_done(first, '"etag"', "sum")
    assert q.next_due() is None  # the clip waits out its backoff
    assert 29 < (q.seconds_until_due() or 0) <= 30
    assert q.next_due(now=time.time() + 31).id == clip.id


def test_recover_after_a_crash_releases_leases_and_finishes_deletions(tmp_path):
    q = UploadQueue(tmp_path / "state")
    a = q.enqueue(clip_file(tmp_path, "a.mp4", 10), {}, owned=True)
    b = q.enqueue(clip_file(tmp_path, "b.mp4", 11), {}, owned=True)
    q.next_due()  # a is leased by an uploader that then dies
    # b was confirmed by S3 but the process died before deleting the file:
    q._conn().execute("UPDATE clips SET state = ? WHERE id = ?", (DONE, b.id))
    restarted = UploadQueue(tmp_path / "state")
    assert restarted.recover() == 1
    assert not b.path.exists() and a.path.exists()
    due = restarted.next_due()
    assert due is not None and due.id == a.id


def test_a_reused_file_name_is_never_deleted_for_the_clip_uploaded_before(tmp_path):
    """A camera that numbers its clips, or `upload --delete` twice with one name: the new file
    at an uploaded clip's path is not the uploaded clip, and neither recovery nor a later
    confirmation may delete it."""
    q = UploadQueue(tmp_path / "state")
    first = q.enqueue(clip_file(tmp_path, "clip.mp4", 10), {}, owned=True)
    # S3 confirmed it, and the process died before it could delete the file:
    q._conn().execute("UPDATE clips SET state = ? WHERE id = ?", (DONE, first.id))
    first.path.unlink()
    second = q.enqueue(clip_file(tmp_path, "clip.mp4", 20), {}, owned=True)  # a new recording, same name
    assert second.id != first.id and second.path == first.path
    restarted = UploadQueue(tmp_path / "state")
    assert restarted.recover() == 1
    assert second.path.read_bytes() and restarted.get(second.id).state == PENDING
    # Even when it is no longer pending (say its upload is under way), the old clip's row does not
    # delete it: only the exact file that was confirmed (same size and mtime) is deleted.
    restarted._conn().execute("UPDATE clips SET owned = 1 WHERE id = ?", (first.id,))
    restarted._conn().execute("UPDATE clips SET state = ? WHERE id = ?", ("uploading-test", second.id))
    restarted.recover()
    assert second.path.exists()
    assert not restarted.get(first.id).owned  # its deletion is settled: not retried at every start


def test_finished_clips_are_forgotten_after_a_month(tmp_path):
    q = UploadQueue(tmp_path / "state")
    old = q.enqueue(clip_file(tmp_path, "old.mp4", 10), {}, owned=False)
    new = q.enqueue(clip_file(tmp_path, "new.mp4", 11), {}, owned=False)
    waiting = q.enqueue(clip_file(tmp_path, "waiting.mp4", 12), {}, owned=False)
    for c in (old, new):
        q.mark_done(c, None, None)
    q._conn().execute("UPDATE clips SET done_at = done_at - 31 * 86400, created_at = created_at - 40 * 86400"
                      " WHERE id IN (?, ?)", (old.id, waiting.id))
    assert q.prune() == 1
    assert sorted(c.id for c in q.all()) == [new.id, waiting.id]  # pending clips are never forgotten
