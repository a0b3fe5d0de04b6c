"""moto's server for the local stack: in a process of its own (the default), or in this one.

Why a process of its own: moto answers every S3, SQS, DynamoDB and Firehose call in Python.
In the process that also runs the handlers, its work (about 3 s of CPU for a 2-minute clip)
holds the same interpreter lock as the handlers' own Python, so on two cores the pipeline
waited on it instead of running beside it (docs/tracking.md, "Speed"). In AWS these services
run elsewhere too. In this process it stays possible for a test that must change moto itself
(tests/test_kms_etags.py gives S3 objects SSE-KMS-like ETags).

Besides moto's own API the server answers two requests of the local stack's own (not AWS
APIs; no handler makes them): many objects of a bucket at once, for the run's export, and
every queue's message counts at once, for the dispatcher (``OBJECTS_PATH``,
``QUEUE_COUNTS_PATH``): each replaced a round trip per object or per queue.

The parent binds the listening socket (port 0: the kernel picks a free one, so two stacks
started at once are never handed the same) and passes it to the child, so the port is known
at once and the first requests wait in the socket's backlog while the child imports moto. The
child serves until its stdin closes: when the stack stops, or when its parent dies.

    python -m vidsift.local.moto_process --fd N      (what MotoProcess runs)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

#: Seconds a child may take to import moto and say it serves.
START_TIMEOUT_S = 60.0
READY = "ready"


#: The services the local stack calls: their backends are built before the first request.
SERVICES = ("s3", "sqs", "dynamodb", "firehose", "sns")


def _quick_retention_check() -> None:
    """moto's SQS checks each message it hands out against the queue's retention period by
    asking for the queue's attributes three times, and each time the attributes count every
    message in the queue (visible, delayed, in flight) afresh: a receive costs messages x
    queue length x 9 clock reads. With a video's frames queued for detect_people that was a
    quarter of moto's CPU for a 2-minute clip (about 1 s). The same check, reading the period
    the queue holds. Same answer: a message is kept while its retention has not run out."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    global moto_retention_check

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > unix_time()

    with _patch_lock:  # two stacks in one process may start at once: replace moto's only once
        if moto_retention_check is None:
            moto_retention_check = SQSBackend.is_message_valid_based_on_retention_period
            SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


#: moto's own retention check, once replaced (tests compare the two).
moto_retention_check: Any = None
_patch_lock = threading.Lock()
_versioned_events = False


def _s3_events_name_versions() -> None:
    """S3's notification of an object created in a versioned bucket names the version
    (``s3.object.versionId``); moto 5.2.5 leaves it out. split_frames reads a video by the
    version its event names (an overwrite before processing must not lose the first), so
    the local stack's events carry it as S3's do."""
    from moto.s3 import notifications

    global _versioned_events
    with _patch_lock:
        if _versioned_events:
            return
        _versioned_events = True
        plain = notifications._get_s3_event

        def with_version(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
            event = plain(event_name, bucket, key, notification_id)
            version = getattr(key, "version_id", None)
            if version and version != "null":
                for record in event["Records"]:
                    record["s3"]["object"]["versionId"] = version
            return event

        notifications._get_s3_event = with_version


def _dispatcher(warm: tuple[str, ...] = ()) -> Any:
    """moto's dispatcher, remembering which backend serves which host.

    moto 5.2.5 looks a request's backend up by its host on every request, listing moto's
    package folder (about 190 ``isdir`` calls) and matching every service's URL patterns:
    about 1.5 ms of each 3 ms S3 request here. The answer depends on the host alone (the
    folder and the patterns do not change while the server runs), so it is kept. moto calls
    this under its own lock."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class RememberingDispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

        def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") in _OWN_PATHS:
                return _OWN_PATHS[environ["PATH_INFO"]](environ, start_response)
            return super().__call__(environ, start_response)

    _quick_retention_check()
    _s3_events_name_versions()
    app = RememberingDispatcher()
    # moto builds a service's app (importing its models and responses) on its first request:
    # about 0.7 s for the local stack's five services, which its child does while the parent
    # starts the model services instead of while the parent waits for its first answers.
    for service in warm:
        app.app_instances[service] = app.create_app(service)
    return app


#: Where the local stack's own reader asks for many objects at once (not an AWS API: like
#: moto's /moto-api/, only the local stack's code calls it; the handlers never do).
OBJECTS_PATH = "/_vidsift/objects"


#: Where the local dispatcher asks how many messages each queue holds, for all its queues at
#: once (vidsift.local.dispatcher.Dispatcher.queue_counts).
QUEUE_COUNTS_PATH = "/_vidsift/queue-counts"


def _json_request(environ: dict[str, Any]) -> Any:
    size = int(environ.get("CONTENT_LENGTH") or 0)
    return json.loads(environ["wsgi.input"].read(size) if size else b"{}")


def _refuse(start_response: Any, exc: Exception) -> list[bytes]:
    message = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
    start_response("400 Bad Request", [("Content-Type", "application/json"), ("Content-Length", str(len(message)))])
    return [message]


def _serve_queue_counts(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """For each queue URL asked (``{"urls": [...]}``), its messages as GetQueueAttributes counts
    them: ``[not visible, delayed, visible]``. The local dispatcher polled every stage's queue
    with a ReceiveMessage at every turn to find the ones with work: about 100 round trips,
    botocore calls and moto requests for a 2-minute clip, nearly all of them empty."""
    from moto.sqs.models import sqs_backends

    try:
        counts = []
        for url in [str(u) for u in _json_request(environ)["urls"]]:
            account, name = url.rstrip("/").split("/")[-2:]
            queue = next(b.queues[name] for b in sqs_backends[account].values() if name in b.queues)
            counts.append([queue.approximate_number_of_messages_not_visible,
                           queue.approximate_number_of_messages_delayed, queue.approximate_number_of_messages])
    except (KeyError, TypeError, ValueError, StopIteration) as exc:
        return _refuse(start_response, exc)
    body = json.dumps({"counts": counts}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _serve_objects(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Many objects of one bucket in one answer, for the run's export of its frames with people
    (vidsift.local.results.object_bodies_at_once): a GetObject per frame cost a round trip, a
    botocore call and a moto request each (about 3 ms of CPU, 120 times for a 2-minute clip),
    to read bytes this process holds already. The request is ``{"bucket": ..., "keys": [...]}``;
    the answer is one JSON line ``{"sizes": [...]}`` (-1: no such key) and the bodies, in the
    order asked. The objects are read as GetObject reads them (moto's S3 backend, latest version)."""
    from moto.s3.models import s3_backends

    try:
        request = _json_request(environ)
        bucket, keys = str(request["bucket"]), [str(k) for k in request["keys"]]
        partition, account = s3_backends.bucket_accounts[bucket]
        backend = s3_backends[account][partition]
        bodies: list[bytes] = []
        sizes: list[int] = []
        for key in keys:
            found = backend.get_object(bucket, key)
            body = b"" if found is None else bytes(found.value)
            bodies.append(body)
            sizes.append(-1 if found is None else len(body))
    except (KeyError, TypeError, ValueError) as exc:
        return _refuse(start_response, exc)
    head = json.dumps({"sizes": sizes}).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(head) + sum(len(b) for b in bodies)))])
    return [head, *bodies]


#: The local stack's own requests, by path (POST only; every other request is moto's).
_OWN_PATHS = {OBJECTS_PATH: _serve_objects, QUEUE_COUNTS_PATH: _serve_queue_counts}


def thread_server_class() -> type:
    """moto's ThreadedMotoServer (in this process), checking for a stop every 50 ms rather than
    every 500 ms (werkzeug's default), which was half of a local stack's stop, and with the
    remembering dispatcher. Its start is moto's own, as of the pinned moto."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    class QuickStopMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            self._server = make_server(self._ip_address, self._port, _dispatcher(), True,
                                       request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.05)

    return QuickStopMotoServer


class MotoProcess:
    """The child: ``start()`` returns the port at once, ``wait_ready()`` waits for the server."""

    def __init__(self, port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> MotoProcess:
        """Start moto's server in a child process on the socket bound here: its own interpreter, so its
        request handling does not compete with the handlers for this process's GIL."""
        fd = self._sock.fileno()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "vidsift.local.moto_process", "--fd", str(fd)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, pass_fds=(fd,))
        return self

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until the child serves; its own error (on stderr, which it shares) if it cannot."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout_s)
        if not line or line[0].strip() != READY:
            self.stop()
            raise RuntimeError(f"moto's server did not start within {timeout_s:g} s (exit code {proc.returncode})")
        # Ours now: the child has its own copy of the listening socket.
        self._sock.close()

    def stop(self) -> None:
        """Ask the child to stop (stdin closed) and wait, killing it if it hangs: no orphan server."""
        proc, self._proc = self._proc, None
        with contextlib.suppress(OSError):
            self._sock.close()
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def serve(fd: int) -> None:
    """The child's life: serve on the inherited socket until stdin closes."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    # moto's server logs every request; the pipeline's own lines are what a person reads.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Ctrl-C reaches the whole process group: the parent stops the stack, then this child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    app = _dispatcher(warm=SERVICES)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler, fd=fd)

    def until_stdin_closes() -> None:
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=until_stdin_closes, name="moto-stdin", daemon=True).start()
    print(READY, flush=True)
    server.serve_forever(poll_interval=0.05)
    # moto's state dies with the process: skip the interpreter's teardown of its thousands of
    # modules (0.3 s, spent while the stack's stop waits).
    sys.stdout.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """The child's entry point (``python -m vidsift.local.moto_process --fd N``): serve moto on the
    listening socket inherited from the parent."""
    parser = argparse.ArgumentParser(description="moto's server on an inherited listening socket")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    os.set_inheritable(args.fd, False)
    serve(args.fd)


if __name__ == "__main__":
    main()
