"""A threaded loopback HTTP server, shared by the local AWS service emulators.

Each emulator supplies a request handler class; this module only owns the socket,
the thread and a clean stop, so that tests can start and stop emulators freely.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalService:
    """An HTTP server on 127.0.0.1 running in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0, host: str = "127.0.0.1") -> None:
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        # Checks for a stop every 50 ms (the default, 500 ms, would be most of a stack's stop).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=handler.__name__, daemon=True)

    @property
    def port(self) -> int:
        """The port the kernel gave the server (bound to port 0, so parallel stacks never collide)."""
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The endpoint URL the AWS SDK is pointed at (AWS_ENDPOINT_URL_<SERVICE>)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalService:
        """Serve on a daemon thread; returns self so a service is started where it is made."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the socket, so a test can start the next service on a clean slate."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
