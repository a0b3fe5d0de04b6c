"""Frames in, with a time: camera indices, network streams and video files.

Every frame carries ``t`` (seconds on the source's own clock, for the clip rule) and ``wall``
(UTC, for recorded-at and operating hours). For a live camera these are the monotonic and wall
clocks at capture; for a video file both come from the frame's timestamp, so a file gives the
same clips on every run and the recorder can be tested without waiting in real time.

Live sources reconnect when the camera drops or stalls (no frame for ``stall_timeout_s``), with
exponential backoff, tell the recorder (``on_lost``) and log how long the stream was gone.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from edge.queue import backoff_delay

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimedFrame:
    """A decoded frame with its media time (for the clip rule and the encoder) and its wall-clock
    time (for the recording's start in the metadata)."""

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
        """The file's frames with their media timestamps (as fast as they decode), until ``stop``."""
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
    """A camera index (V4L2 and friends) or an RTSP/HTTP/MJPEG URL through OpenCV's capture.

    A reader thread pulls frames off the capture; the consumer waits at most ``stall_timeout_s``
    for the next one, so a camera that keeps the connection open but stops sending (hung
    firmware, a half-dead link) is given up on and reconnected like one that hung up. Garbage
    that the decoder rejects ends the read, which is a drop. After each drop or stall,
    ``on_lost(reason)`` is called before the reconnect backoff (the recorder closes the clip in
    progress there); when frames flow again the log says how long the stream was gone.

    Frame times: for RTSP the stream's own timestamps (RTP clock), anchored on the monotonic
    clock at each connection, so a burst of buffered frames keeps its real spacing; for
    other sources the monotonic clock at capture.
    """

    live = True
    #: when a stream's own clock and ours disagree by more than this, follow ours (re-anchor)
    resync_s = 10.0

    def __init__(self, spec: str, reconnect_max_s: float = 60.0, fps_hint: float = 10.0,
                 reconnect_base_s: float = 1.0, stall_timeout_s: float = 10.0,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.target: int | str = int(spec) if spec.isdigit() else spec
        self.reconnect_max_s = reconnect_max_s
        self.reconnect_base_s = reconnect_base_s
        self.stall_timeout_s = stall_timeout_s
        self.on_lost = on_lost
        self.fps = fps_hint
        self.name = f"camera {spec}" if isinstance(self.target, int) else _redact(spec)
        self.reconnects = 0
        self.stalls = 0
        self.outages: list[float] = []  # seconds without frames, one per recovered outage
        self._use_pts = isinstance(self.target, str) and self.target.lower().startswith(("rtsp://", "rtsps://"))

    def _open(self):  # -> cv2.VideoCapture
        import cv2

        if isinstance(self.target, str) and "://" in self.target:
            # FFmpeg's own timeouts: a dead host or a silent stream returns instead of blocking.
            ms = int(max(1.0, self.stall_timeout_s) * 1000)
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            cap = cv2.VideoCapture(self.target)
        if cap.isOpened():
            fps = cap.get(cv2.CAP_PROP_FPS)
            if 1 <= fps <= 120:
                self.fps = fps
        return cap

    def _lost(self, reason: str) -> None:
        if self.on_lost is not None:
            try:
                self.on_lost(reason)
            except Exception:
                log.exception("%s: handling the lost stream failed", self.name)

    def frames(self, stop: threading.Event) -> Iterator[TimedFrame]:
        """The camera's frames until ``stop``, reconnecting with backoff after a drop or a stall, so a
        flaky camera costs a gap, not the service."""
        failures = 0
        last_frame_at: float | None = None  # monotonic time of the last frame before an outage
        last_t = -1e18
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
            reader = _Reader(cap, self._use_pts)
            reason = "stream dropped"
            anchor: tuple[float, float, datetime] | None = None  # (t, stream ms, wall) at the anchor
            try:
                while not stop.is_set():
                    try:
                        item = reader.frames.get(timeout=self.stall_timeout_s)
                    except queue.Empty:
                        reason = f"stream stalled (no frame for {self.stall_timeout_s:g} s)"
                        self.stalls += 1
                        break
                    if item is None:
                        break
                    image, pos_ms, now = item
                    if last_frame_at is not None:
                        gone = now - last_frame_at
                        self.outages.append(gone)
                        log.warning("%s: stream gone for %.1f s; receiving again", self.name, gone)
                        last_frame_at = None
                    failures = 0
                    if pos_ms is not None and anchor is not None and pos_ms > anchor[1]:
                        t = anchor[0] + (pos_ms - anchor[1]) / 1000.0
                        if abs(t - now) > self.resync_s:
                            anchor = None
                    if pos_ms is None or anchor is None or pos_ms <= anchor[1]:
                        t = max(now, last_t + 1e-3)
                        anchor = (t, pos_ms, datetime.now(UTC)) if pos_ms is not None else None
                    t = max(t, last_t + 1e-3)
                    last_t = t
                    wall = anchor[2] + timedelta(seconds=t - anchor[0]) if anchor else datetime.now(UTC)
                    yield TimedFrame(t, wall, image)
            finally:
                reader.close()
            if stop.is_set():
                return
            if last_frame_at is None:
                last_frame_at = reader.last_frame_at or time.monotonic()
            failures += 1
            self.reconnects += 1
            delay = backoff_delay(failures, self.reconnect_base_s, self.reconnect_max_s)
            log.warning("%s: %s; reconnecting in %.1f s", self.name, reason, delay)
            self._lost(reason)
            stop.wait(delay)


class _Reader:
    """Reads one capture in a thread of its own: a read that hangs cannot hang the recorder.
    ``frames`` gets (image, stream ms or None, monotonic time) and None at the end."""

    def __init__(self, cap, use_pts: bool) -> None:
        self.cap, self.use_pts = cap, use_pts
        self.frames: queue.Queue = queue.Queue(maxsize=64)
        self.last_frame_at: float | None = None
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera-reader", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._quit.is_set():
            try:
                self.frames.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        import cv2

        try:
            while not self._quit.is_set():
                ok, image = self.cap.read()
                if not ok or image is None:
                    break
                now = time.monotonic()
                pos = self.cap.get(cv2.CAP_PROP_POS_MSEC) if self.use_pts else None
                self.last_frame_at = now
                if not self._put((image, pos if pos and pos > 0 else None, now)):
                    break
        except Exception:
            log.exception("camera read failed")
        finally:
            self.cap.release()  # the reader owns the capture: released once its read returns
            self._put(None)

    def close(self) -> None:
        """Stop reading; a read still blocked in the driver ends in the background."""
        self._quit.set()
        self._thread.join(timeout=1.0)


def _redact(url: str) -> str:
    """Never log a camera password that sits in an RTSP URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def open_source(spec: str, start_wall: datetime | None = None, reconnect_max_s: float = 60.0,
                reconnect_base_s: float = 1.0, stall_timeout_s: float = 10.0) -> FileSource | LiveSource:
    """A regular file is replayed by its timestamps; anything else (index, URL, /dev/videoN) is live."""
    path = Path(spec)
    if "://" not in spec and not spec.isdigit() and path.is_file():
        return FileSource(path, start_wall)
    return LiveSource(spec, reconnect_max_s, reconnect_base_s=reconnect_base_s, stall_timeout_s=stall_timeout_s)
