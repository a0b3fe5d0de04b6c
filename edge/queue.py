"""The durable upload queue: one SQLite file (WAL mode) in the state directory.

Why SQLite: a clip must survive power loss between "recorded" and "S3 has it". Every state
change is a committed transaction before the next step acts on it, so after a crash the queue
says exactly what is left: pending clips, multipart uploads with their UploadId and completed
parts, clips the disk cap dropped. WAL lets the recorder/watcher enqueue while the uploader
reads and writes, without blocking each other, from threads or separate processes.

A clip's object key (``uploads/<uuid4>.<ext>``) is fixed when it is enqueued. Retries and
resumed uploads write to that same key, so a clip can never appear twice in the bucket.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsift.contract import load as load_contract

log = logging.getLogger(__name__)

PENDING = "pending"
DONE = "done"
DROPPED = "dropped"  # removed by the disk-cap policy before it could be uploaded
MISSING = "missing"  # the file vanished from disk before upload (someone else deleted it)

SNAPSHOT_PRIORITY = 10
CLIP_PRIORITY = 0
LEASE_S = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    path            TEXT NOT NULL,
    key             TEXT NOT NULL UNIQUE,
    size            INTEGER NOT NULL,
    mtime_ns        INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    owned           INTEGER NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    leased_until    REAL NOT NULL DEFAULT 0,
    last_error      TEXT,
    upload_id       TEXT,
    part_size       INTEGER,
    created_at      REAL NOT NULL,
    done_at         REAL,
    etag            TEXT,
    s3_checksum     TEXT
);
CREATE INDEX IF NOT EXISTS clips_due ON clips(state, priority, next_attempt_at);
CREATE INDEX IF NOT EXISTS clips_sha ON clips(sha256);
CREATE TABLE IF NOT EXISTS parts (
    clip_id     INTEGER NOT NULL REFERENCES clips(id),
    part_number INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    checksum    TEXT,
    size        INTEGER NOT NULL,
    PRIMARY KEY (clip_id, part_number)
);
CREATE TABLE IF NOT EXISTS seen (
    path     TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    clip_id  INTEGER
);
"""


@dataclass(frozen=True)
class Clip:
    """One queued file as the database keeps it: what to upload, where to, its checksum, and how its
    upload is going (state, attempts, backoff, multipart upload), so a restart resumes it."""

    id: int
    path: Path
    key: str
    size: int
    mtime_ns: int
    sha256: str
    content_type: str
    metadata: dict[str, str]
    owned: bool
    priority: int
    state: str
    attempts: int
    next_attempt_at: float
    upload_id: str | None
    part_size: int | None
    created_at: float
    last_error: str | None
    etag: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Clip:
        """A clip from its database row (metadata stored as JSON)."""
        return cls(
            id=row["id"], path=Path(row["path"]), key=row["key"], size=row["size"], mtime_ns=row["mtime_ns"],
            sha256=row["sha256"], content_type=row["content_type"], metadata=json.loads(row["metadata"]),
            owned=bool(row["owned"]), priority=row["priority"], state=row["state"], attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"], upload_id=row["upload_id"], part_size=row["part_size"],
            created_at=row["created_at"], last_error=row["last_error"], etag=row["etag"],
        )


@dataclass(frozen=True)
class Part:
    """One part of a multipart upload S3 confirmed, kept so a resumed upload skips it."""

    number: int
    etag: str
    checksum: str | None
    size: int


def file_sha256(path: Path, chunk: int = 1024 * 1024) -> str:
    """The file's SHA-256 (hex), read in chunks: checked again by S3 so a clip corrupted on its way is refused."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def random_key(suffix: str, prefix: str | None = None) -> str:
    """``uploads/<uuid4><suffix>``: nothing about the camera, place or time is in a name."""
    prefix = load_contract()["raw_upload_prefix"] if prefix is None else prefix
    return f"{prefix}{uuid.uuid4()}{suffix.lower()}"


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so retries spread out
    (many devices coming back after an outage must not hit S3 in lock step) but never collapse to 0."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


class UploadQueue:
    """Thread-safe handle on the queue database (one connection per thread)."""

    def __init__(self, state_dir: Path, disk_cap_bytes: int | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.state_dir / "queue.sqlite3"
        self.disk_cap_bytes = disk_cap_bytes
        self._local = threading.local()
        self.wakeup = threading.Event()  # set on enqueue so an uploader in this process starts at once
        self._conn().executescript(_SCHEMA)  # idempotent; executescript runs its own transaction

    # -- connection plumbing --------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a committed "done" or "part" survives power loss
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (each thread has its own: sqlite3 connections are per thread)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def journal_mode(self) -> str:
        """The database's journal mode: WAL, so the recorder can enqueue while the uploader reads."""
        return self._conn().execute("PRAGMA journal_mode").fetchone()[0]

    # -- enqueue ------------------------------------------------------------------------------
    def enqueue(
        self,
        path: Path,
        metadata: dict[str, str],
        *,
        owned: bool,
        content_type: str = "video/mp4",
        key: str | None = None,
        priority: int = CLIP_PRIORITY,
        sha256: str | None = None,
        dedupe: bool = True,
    ) -> Clip:
        """Add a complete file. Returns the queued clip, or the earlier clip with the same content
        (``dedupe``): the same bytes are never uploaded twice."""
        path = Path(path).resolve()
        st = path.stat()
        digest = sha256 or file_sha256(path)
        key = key or random_key(path.suffix)
        now = time.time()
        with self._tx() as db:
            if dedupe:
                row = db.execute(
                    "SELECT * FROM clips WHERE sha256 = ? AND state IN (?, ?) ORDER BY id LIMIT 1",
                    (digest, PENDING, DONE),
                ).fetchone()
                if row is not None:
                    log.info("%s has the same content as queued clip %s (%s): not queued again", path, row["key"],
                             row["state"])
                    return Clip.from_row(row)
            cur = db.execute(
                "INSERT INTO clips (path, key, size, mtime_ns, sha256, content_type, metadata, owned, priority,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (str(path), key, st.st_size, st.st_mtime_ns, digest, content_type, json.dumps(metadata),
                 int(owned), priority, now),
            )
            clip_id = cur.lastrowid
            row = db.execute("SELECT * FROM clips WHERE id = ?", (clip_id,)).fetchone()
        clip = Clip.from_row(row)
        log.info("queued %s as %s (%d bytes)", path.name, clip.key, clip.size)
        self.enforce_disk_cap(keep_id=clip.id)
        self.wakeup.set()
        return clip

    # -- the watcher's memory ---------------------------------------------------------------
    def seen(self, path: Path, size: int, mtime_ns: int) -> bool:
        """Whether ``path`` was already queued at this size and mtime, so a watched file is queued once."""
        row = self._conn().execute("SELECT size, mtime_ns FROM seen WHERE path = ?", (str(path),)).fetchone()
        return row is not None and row["size"] == size and row["mtime_ns"] == mtime_ns

    def remember(self, path: Path, size: int, mtime_ns: int, clip_id: int | None) -> None:
        """Note a watched file as handled (with its clip, if queued), so a rescan does not queue it again."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO seen (path, size, mtime_ns, clip_id) VALUES (?, ?, ?, ?)",
                       (str(path), size, mtime_ns, clip_id))

    # -- the uploader's side ---------------------------------------------------------------
    def next_due(self, now: float | None = None, lease_s: float = LEASE_S, min_priority: int | None = None
                 ) -> Clip | None:
        """Take the next clip that is due: snapshots first, then the least-retried, oldest clip.
        A lease keeps the disk-cap policy from deleting a file while it is being read.
        ``min_priority``: only clips at least this urgent (a snapshot during a clip's upload)."""
        now = time.time() if now is None else now
        floor = -(2**62) if min_priority is None else min_priority
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM clips WHERE state = ? AND next_attempt_at <= ? AND leased_until <= ? AND priority >= ?"
                " ORDER BY priority DESC, next_attempt_at, id LIMIT 1",
                (PENDING, now, now, floor),
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE clips SET leased_until = ? WHERE id = ?", (now + lease_s, row["id"]))
        return Clip.from_row(row)

    def renew_lease(self, clip_id: int, lease_s: float = LEASE_S) -> None:
        """Keep a long upload's clip leased, so another uploader does not take it over mid-transfer."""
        with self._tx() as db:
            db.execute("UPDATE clips SET leased_until = ? WHERE id = ?", (time.time() + lease_s, clip_id))

    def seconds_until_due(self, now: float | None = None) -> float | None:
        """How long until the next pending clip may be tried (backoff or lease), so the uploader sleeps
        exactly that long; None when nothing is pending."""
        now = time.time() if now is None else now
        row = self._conn().execute(
            "SELECT MIN(MAX(next_attempt_at, leased_until)) FROM clips WHERE state = ?", (PENDING,)
        ).fetchone()
        return None if row[0] is None else max(0.0, row[0] - now)

    def mark_done(self, clip: Clip, etag: str | None, s3_checksum: str | None) -> None:
        """Record S3's confirmation, then (and only then) delete a file the queue owns."""
        with self._tx() as db:
            db.execute(
                "UPDATE clips SET state = ?, done_at = ?, etag = ?, s3_checksum = ?, leased_until = 0,"
                " last_error = NULL, upload_id = NULL WHERE id = ?",
                (DONE, time.time(), etag, s3_checksum, clip.id),
            )
            db.execute("DELETE FROM parts WHERE clip_id = ?", (clip.id,))
        if clip.owned:
            _unlink_if_same(clip.path, clip.size, clip.mtime_ns)
            with self._tx() as db:
                db.execute("UPDATE clips SET owned = 0 WHERE id = ?", (clip.id,))

    def mark_failed(self, clip: Clip, error: str, delay_s: float) -> int:
        """Schedule a retry; returns the clip's attempt count."""
        with self._tx() as db:
            db.execute(
                "UPDATE clips SET attempts = attempts + 1, next_attempt_at = ?, leased_until = 0, last_error = ?"
                " WHERE id = ?",
                (time.time() + delay_s, error[:500], clip.id),
            )
            return db.execute("SELECT attempts FROM clips WHERE id = ?", (clip.id,)).fetchone()[0]

    def mark_missing(self, clip: Clip, error: str) -> None:
        """The clip's file is gone (deleted by someone else): stop retrying it, keep the row as a record."""
        with self._tx() as db:
            db.execute("UPDATE clips SET state = ?, leased_until = 0, last_error = ? WHERE id = ?",
                       (MISSING, error[:500], clip.id))

    def release(self, clip: Clip) -> None:
        """Give a clip back untouched (the uploader is stopping)."""
        with self._tx() as db:
            db.execute("UPDATE clips SET leased_until = 0 WHERE id = ?", (clip.id,))

    # -- multipart bookkeeping --------------------------------------------------------------
    def set_upload(self, clip: Clip, upload_id: str | None, part_size: int | None) -> None:
        """Record the multipart upload a clip is being sent with (its parts start over), so a restart
        resumes it instead of sending the whole clip again."""
        with self._tx() as db:
            db.execute("UPDATE clips SET upload_id = ?, part_size = ? WHERE id = ?", (upload_id, part_size, clip.id))
            db.execute("DELETE FROM parts WHERE clip_id = ?", (clip.id,))

    def add_part(self, clip: Clip, part: Part) -> None:
        """Record a part S3 confirmed (with its checksum), and renew the lease: the upload is progressing."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO parts (clip_id, part_number, etag, checksum, size) VALUES (?, ?, ?, ?, ?)",
                (clip.id, part.number, part.etag, part.checksum, part.size),
            )
            db.execute("UPDATE clips SET leased_until = ? WHERE id = ?", (time.time() + LEASE_S, clip.id))

    def parts(self, clip_id: int) -> dict[int, Part]:
        """The parts S3 has confirmed for a clip's upload, by number, to resume after the last one."""
        rows = self._conn().execute(
            "SELECT part_number, etag, checksum, size FROM parts WHERE clip_id = ? ORDER BY part_number", (clip_id,)
        ).fetchall()
        return {r["part_number"]: Part(r["part_number"], r["etag"], r["checksum"], r["size"]) for r in rows}

    def orphaned_uploads(self) -> list[Clip]:
        """Multipart uploads of clips that were dropped: to abort when S3 is reachable."""
        rows = self._conn().execute(
            "SELECT * FROM clips WHERE state IN (?, ?) AND upload_id IS NOT NULL", (DROPPED, MISSING)
        ).fetchall()
        return [Clip.from_row(r) for r in rows]

    def clear_upload(self, clip_id: int) -> None:
        """Forget a clip's multipart upload (aborted or expired), so the next try starts a new one."""
        with self._tx() as db:
            db.execute("UPDATE clips SET upload_id = NULL WHERE id = ?", (clip_id,))
            db.execute("DELETE FROM parts WHERE clip_id = ?", (clip_id,))

    # -- start-up and the disk cap ----------------------------------------------------------
    def recover(self) -> int:
        """On an uploader's start (it holds the state dir's uploader lock, so no other uploader
        runs): drop leases a killed uploader left behind, finish deletions a crash interrupted,
        and report what is pending."""
        with self._tx() as db:
            db.execute("UPDATE clips SET leased_until = 0 WHERE state = ?", (PENDING,))
        self.prune()
        db = self._conn()
        pending = {r["path"] for r in db.execute("SELECT path FROM clips WHERE state = ?", (PENDING,))}
        rows = db.execute("SELECT path, size, mtime_ns FROM clips WHERE state = ? AND owned = 1", (DONE,))
        for r in rows.fetchall():
            # The name may have been reused since (a camera that numbers its clips, `upload --delete`
            # twice): only the very file S3 confirmed is ours to delete, never a newer one.
            if r["path"] not in pending:
                _unlink_if_same(Path(r["path"]), r["size"], r["mtime_ns"])
        with self._tx() as tx:  # settled: not looked at again at every start
            tx.execute("UPDATE clips SET owned = 0 WHERE state = ? AND owned = 1", (DONE,))
        n = self._conn().execute("SELECT COUNT(*) FROM clips WHERE state = ?", (PENDING,)).fetchone()[0]
        if n:
            log.info("resuming %d pending clip(s) from %s", n, self.path)
        return n

    def prune(self, keep_days: float = 30.0) -> int:
        """Forget finished clips after ``keep_days`` so the database stays small on a device that
        runs for years. (Content dedupe then covers the last month; the watcher's per-path memory
        is kept.)"""
        cutoff = time.time() - keep_days * 86400
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM clips WHERE state != ? AND upload_id IS NULL AND COALESCE(done_at, created_at) < ?",
                (PENDING, cutoff),
            )
            return cur.rowcount

    def pending_bytes(self) -> int:
        """Bytes of pending clips the queue owns, against the disk cap."""
        row = self._conn().execute(
            "SELECT COALESCE(SUM(size), 0) FROM clips WHERE state = ? AND owned = 1", (PENDING,)
        ).fetchone()
        return int(row[0])

    def enforce_disk_cap(self, keep_id: int | None = None) -> list[Clip]:
        """Policy when queued clips exceed the cap: drop the *oldest* pending clips first (the newest
        footage is the most likely to matter, and a long outage would otherwise fill the disk),
        skipping one being uploaded right now and never dropping the clip just added. Each drop
        is logged at WARNING with its key, recording time and size."""
        if self.disk_cap_bytes is None:
            return []
        dropped: list[Clip] = []
        now = time.time()
        with self._tx() as db:
            total = db.execute(
                "SELECT COALESCE(SUM(size), 0) FROM clips WHERE state = ? AND owned = 1", (PENDING,)
            ).fetchone()[0]
            if total <= self.disk_cap_bytes:
                return []
            candidates = db.execute(
                "SELECT * FROM clips WHERE state = ? AND owned = 1 AND leased_until <= ? AND id != ?"
                " ORDER BY created_at, id",
                (PENDING, now, -1 if keep_id is None else keep_id),
            ).fetchall()
            for row in candidates:
                if total <= self.disk_cap_bytes:
                    break
                db.execute("UPDATE clips SET state = ?, last_error = ? WHERE id = ?",
                           (DROPPED, f"disk cap {self.disk_cap_bytes} bytes reached", row["id"]))
                total -= row["size"]
                dropped.append(Clip.from_row(row))
        for clip in dropped:
            log.warning(
                "disk cap of %d bytes reached: dropped oldest queued clip %s (%s, recorded-at %s, %d bytes)",
                self.disk_cap_bytes, clip.key, clip.path.name, clip.metadata.get("recorded-at", "?"), clip.size,
            )
            _unlink(clip.path)
        if total > self.disk_cap_bytes:
            log.warning("queue holds %d bytes, over the %d byte cap, with nothing more it may drop", total,
                        self.disk_cap_bytes)
        return dropped

    # -- reporting ----------------------------------------------------------------------------
    def get(self, clip_id: int) -> Clip:
        """One clip by id, as stored now."""
        return Clip.from_row(self._conn().execute("SELECT * FROM clips WHERE id = ?", (clip_id,)).fetchone())

    def all(self) -> list[Clip]:
        """Every clip in the queue, in the order queued (for status and tests)."""
        return [Clip.from_row(r) for r in self._conn().execute("SELECT * FROM clips ORDER BY id").fetchall()]

    def stats(self) -> dict[str, Any]:
        """Clips and bytes by state and the oldest pending clip's age: whether the device keeps up."""
        rows = self._conn().execute(
            "SELECT state, COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM clips GROUP BY state"
        ).fetchall()
        out: dict[str, Any] = {r["state"]: {"clips": r["n"], "bytes": r["bytes"]} for r in rows}
        oldest = self._conn().execute(
            "SELECT MIN(created_at) FROM clips WHERE state = ?", (PENDING,)
        ).fetchone()[0]
        out["oldest_pending_age_s"] = None if oldest is None else round(time.time() - oldest, 1)
        out["disk_cap_bytes"] = self.disk_cap_bytes
        return out


def _unlink(path: Path, quiet: bool = False) -> None:
    try:
        os.unlink(path)
        if not quiet:
            log.debug("deleted local copy %s", path)
    except FileNotFoundError:
        pass


def _unlink_if_same(path: Path, size: int, mtime_ns: int) -> None:
    """Delete ``path`` only if it is still the file that was queued (same size and mtime)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_size == size and st.st_mtime_ns == mtime_ns:
        _unlink(path)
    else:
        log.info("%s was replaced since it was uploaded: the new file is kept", path)
