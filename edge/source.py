"""Frames in, with a time: camera indices, network streams and video files.

Every frame carries ``t`` (seconds on the source's own clock, for the clip rule) and ``wall``
(UTC, for recorded-at and operating hours). For a live camera these are the monotonic and wall
clocks at capture; for a video file both come from the frame's timestamp, so a file gives the
same clips on every run and the recorder can be tested without waiting in real time.

Live sources reconnect when the camera drops, with exponential backoff, and log each drop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from edge.queue import backoff_delay

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimedFrame:
    t: float
    wall: datetime
    image: np.ndarray  # BGR, HxWx3 uint8


class FileSource:
    """A video file decoded with PyAV; time from frame timestamps."""

    live = False

    def __init__(self, path: Path, start_wall: datetime | None = None) -> None:
        import av

        from edge.metadata import probe_video, recording_start

        self.path = Path(path)
        self.start_wall = start_wall or recording_start(self.path, probe_video(self.path))
        with av.open(str(self.path)) as c:
            rate = c.streams.video[0].average_rate
        self.fps = float(rate) if rate else 10.0
        self.name = self.path.name

    def frames(self, stop: threading.Event) -> Iterator[TimedFrame]:
        import av

        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            t0: float | None = None
            for frame in container.decode(stream):
                if stop.is_set():
                    return
                t = float(frame.time) if frame.time is not None else 0.0
                t0 = t if t0 is None else t0
                t -= t0
                yield TimedFrame(t, self.start_wall + timedelta(seconds=t), frame.to_ndarray(format="bgr24"))


class LiveSource:
    """A camera index (V4L2 and friends) or an RTSP/HTTP/MJPEG URL through OpenCV's capture."""

    live = True

    def __init__(self, spec: str, reconnect_max_s: float = 60.0, fps_hint: float = 10.0,
                 reconnect_base_s: float = 1.0) -> None:
        self.spec = spec
        self.target: int | str = int(spec) if spec.isdigit() else spec
        self.reconnect_max_s = reconnect_max_s
        self.reconnect_base_s = reconnect_base_s
        self.fps = fps_hint
        self.name = f"camera {spec}" if isinstance(self.target, int) else _redact(spec)
        self.reconnects = 0

    def _open(self):  # -> cv2.VideoCapture
        import cv2

        cap = cv2.VideoCapture(self.target)
        if cap.isOpened():
            fps = cap.get(cv2.CAP_PROP_FPS)
            if 1 <= fps <= 120:
                self.fps = fps
        return cap

    def frames(self, stop: threading.Event) -> Iterator[TimedFrame]:
        failures = 0
        while not stop.is_set():
            cap = self._open()
            if not cap.isOpened():
                cap.release()
                failures += 1
                delay = backoff_delay(failures, self.reconnect_base_s, self.reconnect_max_s)
                log.warning("%s: cannot open (attempt %d); retrying in %.1f s", self.name, failures, delay)
                stop.wait(delay)
                continue
            log.info("%s: connected (%.1f fps)", self.name, self.fps)
            got_frame = False
            try:
                while not stop.is_set():
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
                    if not got_frame:
                        got_frame, failures = True, 0
                    yield TimedFrame(time.monotonic(), datetime.now(UTC), image)
            finally:
                cap.release()
            if stop.is_set():
                return
            failures += 1
            self.reconnects += 1
            delay = backoff_delay(failures, self.reconnect_base_s, self.reconnect_max_s)
            log.warning("%s: stream dropped; reconnecting in %.1f s", self.name, delay)
            stop.wait(delay)


def _redact(url: str) -> str:
    """Never log a camera password that sits in an RTSP URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def open_source(spec: str, start_wall: datetime | None = None, reconnect_max_s: float = 60.0) \
        -> FileSource | LiveSource:
    """A regular file is replayed by its timestamps; anything else (index, URL, /dev/videoN) is live."""
    path = Path(spec)
    if "://" not in spec and not spec.isdigit() and path.is_file():
        return FileSource(path, start_wall)
    return LiveSource(spec, reconnect_max_s)
