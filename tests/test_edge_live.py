"""The recorder on live cameras: a real RTSP server on loopback, and an MJPEG-over-HTTP camera.

RTSP: GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0, run by the system python3)
serves /cam, fed by Debian's ffmpeg looping a clip with people in it in real time (RTP over UDP
into the server, RTSP over TCP out of it, as cameras do). The real SSDLite person model decides.
The server is killed mid-clip and started again. MJPEG: a camera written here that hangs
(connection open, no frames) or sends garbage. `make live-camera` installs the packages.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import cv2
import numpy as np
import pytest

from edge.config import EdgeConfig
from edge.detector import SsdLitePersonDetector
from edge.queue import UploadQueue
from edge.recorder import Recorder
from edge.source import LiveSource
from edge.testing import free_port, people_video

FPS = 10
SYSTEM_PY = "/usr/bin/python3"

RTSP_SERVER = r'''
import sys, gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
port, udp = sys.argv[1], int(sys.argv[2])
server = GstRtspServer.RTSPServer.new()
server.set_address("127.0.0.1"); server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory.new()
factory.set_launch(f'( udpsrc port={udp} address=127.0.0.1 caps="application/x-rtp,media=video,'
                   'encoding-name=H264,clock-rate=90000,payload=96" ! rtph264depay ! h264parse config-interval=-1 '
                   '! rtph264pay name=pay0 pt=96 config-interval=-1 )')
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit("cannot listen")
print("ready", flush=True)
GLib.MainLoop().run()
'''


def _have_rtsp() -> str | None:
    if not shutil.which("ffmpeg"):
        return "ffmpeg is not installed (make live-camera)"
    check = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst; Gst.init(None); "
             "assert all(map(Gst.ElementFactory.find, ['udpsrc', 'rtph264depay', 'h264parse', 'rtph264pay']))")
    probe = subprocess.run([SYSTEM_PY, "-c", check], capture_output=True) if os.path.exists(SYSTEM_PY) else None
    if probe is None or probe.returncode:
        return "GStreamer's RTSP server is not installed (make live-camera)"
    return None


def _kill(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class RtspCamera:
    """The RTSP server and its ffmpeg feed; stop()/start() the server to drop the camera."""

    def __init__(self, tmp, video) -> None:
        self.port, self.udp = free_port(), free_port()
        self.script = tmp / "rtsp_server.py"
        self.script.write_text(RTSP_SERVER)
        self.video = video
        self.server: subprocess.Popen | None = None
        self.feed: subprocess.Popen | None = None
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        self.server = subprocess.Popen([SYSTEM_PY, str(self.script), str(self.port), str(self.udp)],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.server.stdout.readline().strip() == "ready"
        if self.feed is None or self.feed.poll() is not None:
            self.feed = subprocess.Popen(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.video),
                 "-an", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10",
                 "-x264-params", "repeat-headers=1", "-threads", "1", "-f", "rtp", f"rtp://127.0.0.1:{self.udp}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_server(self) -> None:
        _kill(self.server)
        self.server = None

    def close(self) -> None:
        self.stop_server()
        _kill(self.feed)


@pytest.fixture
def rtsp_camera(tmp_path):
    why = _have_rtsp()
    if why:
        pytest.skip(why)
    video = tmp_path / "street.mp4"
    # 12 s loop: an empty scene, a person for 5 s, empty again.
    people_video(video, [("coffee", 3), ("astronaut", 5), ("rocket", 4)], fps=FPS, size=(320, 240))
    cam = RtspCamera(tmp_path, video)
    try:
        cam.start()
        yield cam
    finally:
        cam.close()


def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.1)


def media_times(path) -> list[float]:
    with av.open(str(path)) as c:
        return [f.time for f in c.decode(video=0)]


def test_rtsp_camera_clips_survive_the_server_going_away(rtsp_camera, tmp_path, caplog, monkeypatch,
                                                       ssdlite_pbtxt):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    threads = cv2.getNumThreads()
    cfg = EdgeConfig(bucket="b", state_dir=tmp_path / "state", pre_roll_s=1, post_roll_s=1.5, max_clip_s=4,
                     min_gap_s=0, detect_fps=2, threshold=0.5, snapshots=False, detector_threads=1)
    queue = UploadQueue(cfg.state_dir)
    source = LiveSource(rtsp_camera.url, reconnect_base_s=0.5, reconnect_max_s=2, stall_timeout_s=5)
    stop = threading.Event()
    clips = []
    detector = SsdLitePersonDetector(pbtxt=ssdlite_pbtxt, threads=1)
    recorder = Recorder(cfg, queue, detector, camera_id="cam", device_id="dev", fps=FPS,
                        stop=stop, on_clip=clips.append)
    source.on_lost = recorder.finish  # as edge.cli wires it
    began = datetime.now(UTC)
    worker = threading.Thread(target=recorder.run, args=(source.frames(stop),), daemon=True)
    try:
        with caplog.at_level(logging.INFO, logger="edge.source"):
            worker.start()
            # 1. clips out of the live stream
            wait_for(lambda: len(clips) >= 1, 90, "a clip from the live stream")
            first = clips[0]
            assert first.max_people >= 1 and first.max_confidence >= 0.5
            times = media_times(first.path)
            length = first.last_t - first.first_t
            assert length <= cfg.max_clip_s + 1e-6
            assert abs((times[-1] - times[0]) - length) < 0.05  # the MP4 carries the frames' own times
            assert len(times) == first.frames
            # the stream's own 10 fps clock, not the arrival times of a buffered burst
            steps = np.diff(times)
            assert np.median(steps) == pytest.approx(1 / FPS, abs=0.02), steps
            assert began <= first.recorded_at <= datetime.now(UTC)

            # 2. the server goes away mid-clip: the clip in progress is closed and queued intact
            wait_for(lambda: recorder.active is not None, 60, "a clip in progress")
            n = len(clips)
            rtsp_camera.stop_server()
            gone_at = time.monotonic()
            wait_for(lambda: len(clips) > n, 30, "the clip in progress closed after the drop")
            cut = clips[n]
            assert cut.stop_reason.startswith("stream")
            assert cut.path.is_file() and not list(cut.path.parent.glob("*.part"))
            assert len(media_times(cut.path)) == cut.frames >= 1  # a complete, playable MP4
            queued = {c.key: c for c in queue.all()}
            assert cut.key in queued and queued[cut.key].metadata["recorded-at"]
            time.sleep(3)
            rtsp_camera.start()
            # 3. back: reconnected with backoff, recording again, the log says how long it was gone
            wait_for(lambda: source.outages, 30, "frames again after the server came back")
            assert source.outages[0] >= time.monotonic() - gone_at - 30 and source.outages[0] >= 2.5
            m = len(clips)
            wait_for(lambda: len(clips) > m, 60, "a clip after the reconnect")
            assert clips[m].first_t > cut.last_t
        assert source.reconnects >= 1
        assert "stream gone for" in caplog.text and "reconnecting in" in caplog.text
    finally:
        stop.set()
        worker.join(30)
        cv2.setNumThreads(threads)
    assert not worker.is_alive()


# -- MJPEG over HTTP: a camera that hangs, and one that sends garbage --------------------------
class MjpegCamera:
    """multipart/x-mixed-replace JPEGs at 10 fps. ``mode`` per connection: 'ok', 'hang' (send a
    few frames, then keep the connection open and silent) or 'garbage' (a few frames, then noise)."""

    def __init__(self, modes: list[str]) -> None:
        self.modes, self.connections = modes, 0
        self.done = threading.Event()
        cam = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mode = cam.modes[min(cam.connections, len(cam.modes) - 1)]
                cam.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                rng = np.random.default_rng(cam.connections)
                try:
                    for i in range(10_000):
                        if cam.done.is_set():
                            return
                        if mode != "ok" and i >= 5:
                            if mode == "hang":
                                cam.done.wait(60)  # the socket stays open, nothing more comes
                                return
                            self.wfile.write(rng.integers(0, 255, 4096, dtype=np.uint8).tobytes())
                        else:
                            img = np.full((120, 160, 3), (i * 7) % 255, np.uint8)
                            data = cv2.imencode(".jpg", img)[1].tobytes()
                            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                             % (len(data), data))
                        self.wfile.flush()
                        time.sleep(1 / FPS)
                except (BrokenPipeError, ConnectionResetError):
                    return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mjpeg_camera():
    cams = []

    def make(modes):
        cams.append(MjpegCamera(modes))
        return cams[-1]

    yield make
    for cam in cams:
        cam.close()


@pytest.mark.parametrize("mode", ["hang", "garbage"])
def test_a_hung_or_garbled_mjpeg_camera_is_reconnected(mjpeg_camera, mode, caplog):
    cam = mjpeg_camera([mode, "ok"])
    lost = []
    source = LiveSource(cam.url, reconnect_base_s=0.2, reconnect_max_s=1, stall_timeout_s=2, on_lost=lost.append)
    stop = threading.Event()
    stamps = []
    with caplog.at_level(logging.INFO, logger="edge.source"):
        started = time.monotonic()
        for frame in source.frames(stop):
            assert frame.image.shape == (120, 160, 3)
            stamps.append(frame.t)
            if cam.connections >= 2 and len(stamps) >= 15:
                stop.set()
            assert time.monotonic() - started < 60, "never came back"
    assert cam.connections >= 2 and source.reconnects >= 1 and lost
    # from the last good frame of the bad connection to the first of the new one: bounded
    assert source.outages and source.outages[0] < 30
    assert all(b > a for a, b in itertools.pairwise(stamps))
    if mode == "hang":
        assert source.stalls >= 1 and "stream stalled" in caplog.text
    assert "stream gone for" in caplog.text
