"""Progress of ``vidsift run``, per stage and per video.

The stage bars count messages; they say the pipeline moves but not how far a given video
is, and a long video is one split_frames message for most of its run. So each video also
gets a bar: "splitting" until its summary is written, then the frames analysed (its
``people`` rows) out of the frames it kept. Everything is read from the local stack as the
cloud would show it (summary objects, Firehose output, error records), a little at a time:
only objects not seen before are read, at most once per ``interval_s``.

On a terminal the states are drawn as tqdm bars. Into a pipe or a file, redrawn bars are
escape codes, so each video gets one plain line instead, printed when it finishes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from vidsift import aws, contract
from vidsift.core import keys
from vidsift.local.results import object_body, object_keys
from vidsift.local.stack import LocalStack


class VideoProgress:
    """How far each video of ``vidsift run`` is, read from the local stack as the cloud would show
    it (summaries, delivered rows, error records), drawn as bars on a terminal or as one line per
    finished video elsewhere: the stage counters alone cannot say how far a given video is."""

    def __init__(self, stack: LocalStack, uploads: dict[str, Path], *, first_position: int = 0,
                 interval_s: float = 0.5, view: str = "bars", out: TextIO | None = None) -> None:
        self.stack, self.interval_s, self.view = stack, interval_s, view
        self._out = out or sys.stdout
        self._raw = stack.names.bucket("raw")
        self._names = {key: path.name for key, path in uploads.items()}
        self._bars: dict[str, Any] = {}  # by raw key
        if view == "bars":
            from tqdm import tqdm

            for i, (key, name) in enumerate(self._names.items()):
                bar = tqdm(desc=f"  {name[:28]:<28}", unit="frame", position=first_position + i, leave=True,
                           total=None)
                bar.set_postfix_str("splitting", refresh=True)
                self._bars[key] = bar
        self._printed: set[str] = set()
        self._video_key: dict[str, str] = {}  # video_id -> raw key
        self._kept: dict[str, int] = {}
        self._analysed: dict[str, set[str]] = {}
        self._seen: set[str] = set()
        self._failed: set[str] = set()
        self._last = 0.0

    def update(self, force: bool = False) -> None:
        """Read what changed since the last look and redraw; at most once per ``interval_s`` unless
        ``force``d, because each look lists and reads objects from the local stack."""
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        self._read_summaries()
        self._read_rows()
        self._read_errors()
        for video, key in self._video_key.items():
            kept, done = self._kept.get(video, 0), len(self._analysed.get(video, ()))
            if key not in self._failed:
                self._show(key, "done" if done >= kept else "analysing", min(done, kept), kept)
        for key in self._failed:
            self._show(key, "FAILED", None, None)

    def _show(self, key: str, state: str, done: int | None, kept: int | None) -> None:
        if self.view == "bars":
            bar = self._bars[key]
            if done is not None:
                bar.total, bar.n = kept, done
            bar.set_postfix_str(state, refresh=False)
            bar.refresh()
        elif state in ("done", "FAILED") and key not in self._printed:
            self._printed.add(key)
            detail = f": {done} of {kept} frames analysed" if state == "done" else ""
            print(f"{self._names[key]}: {state}{detail}", file=self._out, flush=True)

    def close(self) -> None:
        """One last look, so the bars end on the run's final numbers, then release the terminal lines."""
        self.update(force=True)
        for bar in self._bars.values():
            bar.close()

    def _new(self, bucket: str, prefix: str = "") -> list[str]:
        return [k for k in object_keys(bucket, prefix) if f"{bucket}/{k}" not in self._seen]

    def _read(self, bucket: str, key: str) -> bytes:
        self._seen.add(f"{bucket}/{key}")
        return object_body(bucket, key)

    def _read_summaries(self) -> None:
        """One look per video folder (``<video_id>/``) still without a summary, not per frame."""
        frames, s3 = self.stack.names.bucket("frames"), aws.client("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=frames, Delimiter="/"):
            for folder in page.get("CommonPrefixes", []):
                video = folder["Prefix"].rstrip("/")
                if video in self._kept:
                    continue
                key = keys.summary_key(video)
                try:
                    doc = json.loads(self._read(frames, key))
                except Exception as exc:
                    if aws.error_code(exc) in ("NoSuchKey", "404"):
                        continue  # still splitting
                    raise
                if doc.get("source_bucket") == self._raw and doc.get("source_key") in self._names:
                    self._video_key[video] = doc["source_key"]
                self._kept[video] = int(doc.get("frames_kept", doc.get("frames_sampled", 0)))

    def _read_rows(self) -> None:
        analytics = self.stack.names.bucket("analytics")
        # The prefix up to its first Firehose expression (which the cloud expands and moto does not).
        for key in self._new(analytics, contract.load()["analytics_prefixes"]["people"].split("!{", 1)[0]):
            for line in self._read(analytics, key).decode().splitlines():
                if line.strip():  # Firehose delivers at least once: count each record once
                    row = json.loads(line)
                    self._analysed.setdefault(row["video_id"], set()).add(row["record_id"])

    def _read_errors(self) -> None:
        analytics = self.stack.names.bucket("analytics")
        prefix = keys.error_prefix("split_frames")
        for key in self._new(analytics, prefix):
            subject = str(json.loads(self._read(analytics, key)).get("subject", ""))
            raw_key = subject.removeprefix(f"s3://{self._raw}/")
            if raw_key in self._names:
                self._failed.add(raw_key)
