"""Real test equipment for vidsift-edge: a fault-injecting HTTP proxy and a people video.

Kept in the package (not in a conftest) so the edge tests and anyone debugging a device can
use them: point AWS_ENDPOINT_URL_S3 at a FaultProxy in front of a local S3 (moto) and switch
it to refuse connections, answer 500, cut requests mid-body or crawl, while the uploader runs.
It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PASS = "pass"
REFUSE = "refuse"  # close the connection before reading anything: the network is down
ERROR_500 = "500"  # read the request, answer 500 InternalError: S3 is unwell
DROP = "drop"  # read the request, close without answering: the reply was lost
CUT = "cut"  # forward half the body upstream, then close both sides: the link died mid-upload
CORRUPT = "corrupt"  # forward the request with one body byte flipped: corruption in transit


@dataclass
class Request:
    """One request the fault proxy saw and what it did to it, for a test to check the uploader's retries."""

    method: str
    target: str
    length: int
    fault: str
    status: int | None = None

    @property
    def is_part(self) -> bool:
        """Whether the request uploads one part of a multipart upload."""
        return self.method == "PUT" and "partNumber=" in self.target

    def part_number(self) -> int | None:
        """The part number of a part upload, None for any other request."""
        for kv in self.target.split("?", 1)[-1].split("&"):
            if kv.startswith("partNumber="):
                return int(kv.split("=", 1)[1])
        return None


class FaultProxy:
    """One request per connection; faults by ``mode`` or per request by ``plan``."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = PASS
        self.plan: Callable[[Request], str | None] | None = None
        self.bytes_per_s: float | None = None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        """The proxy's URL, to set as AWS_ENDPOINT_URL_S3 in front of the real (local) S3."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        """Serve on a daemon thread; returns self so the proxy is started where it is made."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one connection ---------------------------------------------------------------------
    def _handle(self, client: socket.socket) -> None:
        client.settimeout(30)
        if self.mode == REFUSE:
            client.close()
            with self._lock:
                self.requests.append(Request("?", "?", 0, REFUSE))
            return
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        head, body_start = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = []
        length = 0
        expect = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            lname = name.strip().lower()
            if lname == "content-length":
                length = int(value.strip())
            if lname == "expect":
                expect = True
                continue
            if lname == "connection":
                continue
            headers.append(line)
        req = Request(method, target, length, PASS)
        req.fault = (self.plan(req) if self.plan else None) or self.mode
        with self._lock:
            self.requests.append(req)
        if expect:
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        def body_chunks(limit: int):
            sent, pending = 0, body_start
            while sent < limit:
                if not pending:
                    pending = client.recv(min(65536, limit - sent))
                    if not pending:
                        return
                piece, pending = pending[: limit - sent], pending[limit - sent:]
                sent += len(piece)
                if self.bytes_per_s:
                    time.sleep(len(piece) / self.bytes_per_s)
                yield piece

        if req.fault == REFUSE:  # chosen per request by a plan: hang up before the body
            client.close()
            return
        if req.fault in (ERROR_500, DROP):
            for _ in body_chunks(length):
                pass
            if req.fault == ERROR_500:
                msg = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                client.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                               b"Content-Length: " + str(len(msg)).encode() + b"\r\nConnection: close\r\n\r\n" + msg)
                req.status = 500
            client.close()
            return
        upstream = socket.create_connection(self.upstream, timeout=60)
        try:
            out_head = "\r\n".join([lines[0], *headers, "Connection: close"]) + "\r\n\r\n"
            upstream.sendall(out_head.encode("latin-1"))
            limit = length // 2 if req.fault == CUT else length
            flip_at = length // 2 if req.fault == CORRUPT else -1
            offset = 0
            for piece in body_chunks(limit):
                if offset <= flip_at < offset + len(piece):
                    i = flip_at - offset
                    piece = piece[:i] + bytes([piece[i] ^ 0xFF]) + piece[i + 1:]
                offset += len(piece)
                upstream.sendall(piece)
            if req.fault == CUT:
                return
            response = b""
            while chunk := upstream.recv(65536):
                response += chunk
            try:
                req.status = int(response.split(b" ", 2)[1])
            except (IndexError, ValueError):
                req.status = None
            client.sendall(response)
        finally:
            upstream.close()
            client.close()

    def count(self, predicate: Callable[[Request], bool]) -> int:
        """How many requests so far match ``predicate``, for a test to check what the uploader retried."""
        with self._lock:
            return sum(1 for r in self.requests if predicate(r))


def free_port() -> int:
    """A port free right now, for servers that must be told their port (RTSP, RTP)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    """A moto S3 server on a free loopback port: (server, port). Stop it with server.stop()."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, port


def reset_moto(port: int) -> None:
    """Empty moto's state between tests (its /moto-api/reset), keeping its server running."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST"),
                           timeout=10).read()


def use_local_s3(monkeypatch, scratch: Path, endpoint: str) -> None:
    """Point boto3 at a local endpoint with dummy credentials, and nothing of the real machine's
    AWS setup (profiles, config files, instance metadata) in the way. ``monkeypatch`` is pytest's."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(scratch / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(scratch / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)


# -- a video with people in some segments -----------------------------------------------------
def photo(name: str):
    """RGB photos that ship in packages: astronaut, camera, grace_hopper show a person;
    coffee, chelsea (a cat), rocket do not."""
    import numpy as np

    if name == "grace_hopper":
        import matplotlib.cbook
        from PIL import Image

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return np.asarray(Image.open(f).convert("RGB"))
    from skimage import data

    img = getattr(data, name)()
    return np.stack([img] * 3, axis=-1) if img.ndim == 2 else img[..., :3]


def people_video(path: Path, segments: list[tuple[str, float]], fps: int = 10, size: tuple[int, int] = (320, 240),
                 seed: int = 0) -> list[tuple[str, float, float]]:
    """Write an H.264 MP4 of photos, each shown for its duration with a small drift and sensor
    noise so that a motion check fires; returns [(photo, start_s, end_s)]."""
    from fractions import Fraction

    import av
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = size
    noise = [rng.normal(0, 3, (h, w, 3)).astype(np.int16) for _ in range(7)]  # sensor noise, reused
    timeline = []
    t = 0.0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20"}
        index = 0
        for name, seconds in segments:
            base = cv2.resize(cv2.cvtColor(photo(name), cv2.COLOR_RGB2BGR), (w + 16, h + 16))
            n = round(seconds * fps)
            for i in range(n):
                dx, dy = int(8 + 6 * np.sin(i / 3)), int(8 + 6 * np.cos(i / 4))
                frame = base[dy: dy + h, dx: dx + w].astype(np.int16)
                frame += noise[index % len(noise)]
                vf = av.VideoFrame.from_ndarray(np.clip(frame, 0, 255).astype(np.uint8), format="bgr24")
                vf.pts = index
                index += 1
                for packet in stream.encode(vf):
                    out.mux(packet)
            timeline.append((name, t, t + n / fps))
            t += n / fps
        for packet in stream.encode():
            out.mux(packet)
    return timeline
