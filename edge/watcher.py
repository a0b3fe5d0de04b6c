"""Pick up finished video files from a folder and queue them for upload.

A camera or an NVR writes a clip for seconds or minutes; uploading it half-written would
deliver a truncated video that S3 then holds forever under its key. A file is taken only when

* its size and mtime have not changed for ``settle_s`` (polled, no inotify dependency), and
* no process has it open for writing, where Linux lets us see that cheaply: the
  /proc/<pid>/fd links and the access mode in /proc/<pid>/fdinfo (processes of other users are
  invisible without privileges, so this check is best effort and the settle interval is the rule).

Files already taken are remembered in the queue database by (path, size, mtime), so a restart
does not upload them again, and content already queued or uploaded is recognised by SHA-256.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.queue import DONE, Clip, UploadQueue
from vidsift.contract import load as load_contract

log = logging.getLogger(__name__)

#: Names that editors, rsync and downloaders use for files still being written.
TEMP_MARKERS = (".part", ".tmp", ".partial", ".crdownload", "~")


def video_suffixes() -> tuple[str, ...]:
    """The video suffixes the pipeline is notified of (the contract's): other files are not queued."""
    return tuple(load_contract()["video_suffixes"])


def open_for_writing(paths: set[str]) -> set[str]:
    """Which of these (absolute, resolved) paths some visible process holds open for writing."""
    if not paths:
        return set()
    busy: set[str] = set()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return busy
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's process
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target not in paths:
                continue
            try:
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    flags = next((int(line.split()[1], 8) for line in info if line.startswith("flags:")), 0)
            except (OSError, ValueError):
                flags = os.O_WRONLY  # cannot tell: assume the worst
            if (flags & os.O_ACCMODE) in (os.O_WRONLY, os.O_RDWR):
                busy.add(target)
    return busy


@dataclass
class _Candidate:
    size: int
    mtime_ns: int
    stable_since: float


class Watcher:
    """Polls a folder; ``scan()`` is one pass, ``run()`` loops until stopped."""

    def __init__(
        self,
        directory: Path,
        queue: UploadQueue,
        metadata_for: Callable[[Path], dict[str, str]],
        *,
        settle_s: float = 5.0,
        poll_s: float = 1.0,
        keep: bool = False,
        recursive: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.queue = queue
        self.metadata_for = metadata_for
        self.settle_s = settle_s
        self.poll_s = poll_s
        self.keep = keep
        self.recursive = recursive
        self.clock = clock
        self._candidates: dict[str, _Candidate] = {}
        self.suffixes = video_suffixes()

    def _files(self) -> list[Path]:
        pattern = "**/*" if self.recursive else "*"
        out = []
        for p in self.directory.glob(pattern):
            name = p.name
            if name.startswith(".") or name.endswith(TEMP_MARKERS) or p.suffix.lower() not in self.suffixes:
                continue
            if p.is_file():
                out.append(p)
        return sorted(out)

    def scan(self) -> list[Clip]:
        """One pass: returns the clips queued in this pass."""
        now = self.clock()
        ready: dict[str, os.stat_result] = {}
        present: set[str] = set()
        for path in self._files():
            key = str(path)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            present.add(key)
            if self.queue.seen(path, st.st_size, st.st_mtime_ns):
                continue
            cand = self._candidates.get(key)
            if cand is None or (cand.size, cand.mtime_ns) != (st.st_size, st.st_mtime_ns):
                self._candidates[key] = _Candidate(st.st_size, st.st_mtime_ns, now)
                continue
            if now - cand.stable_since >= self.settle_s and st.st_size > 0:
                ready[key] = st
        for gone in set(self._candidates) - present:
            del self._candidates[gone]
        busy = open_for_writing(set(ready))
        queued: list[Clip] = []
        for key, st in ready.items():
            path = Path(key)
            if key in busy:
                log.debug("%s is still open for writing; waiting", path)
                continue
            clip = self._take(path, st)
            if clip is not None:
                queued.append(clip)
            self._candidates.pop(key, None)
        return queued

    def _take(self, path: Path, st: os.stat_result) -> Clip | None:
        try:
            metadata = self.metadata_for(path)
            clip = self.queue.enqueue(path, metadata, owned=not self.keep)
        except FileNotFoundError:
            return None
        self.queue.remember(path, st.st_size, st.st_mtime_ns, clip.id)
        if clip.path != path:
            # Same bytes as a clip queued earlier: not uploaded again. If that one is already in
            # S3 and this folder's files are ours to remove, this copy can go as well.
            if clip.state == DONE and not self.keep:
                path.unlink(missing_ok=True)
            return None
        return clip

    def run(self, stop: threading.Event) -> None:
        """Scan the folder every ``poll_s`` until ``stop``, surviving a folder that goes away (a USB disk)."""
        log.info("watching %s for %s files (settle %.1f s)", self.directory, "/".join(self.suffixes), self.settle_s)
        while not stop.is_set():
            try:
                self.scan()
            except OSError as exc:  # e.g. the folder is on a USB disk that went away
                log.warning("scan of %s failed: %s", self.directory, exc)
            stop.wait(self.poll_s)
