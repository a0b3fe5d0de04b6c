"""A local SageMaker Runtime: ``InvokeEndpoint`` served by the real inference handler.

Why: ``detect_people`` talks to its endpoint through the unchanged boto3
``sagemaker-runtime`` client; pointing ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` here is all it
takes to run it offline. The same ``sagemaker/code/inference.py`` that the cloud container
runs is loaded by file path, its ``model_fn`` equivalent is called once at start, and each
request goes through ``input_fn -> predict_fn -> output_fn`` as in the container.

Errors look like the real service's, so the client code's error handling is exercised:

* a failing container (our handler raising) -> ``ModelError`` (HTTP 424) carrying
  ``OriginalStatusCode`` / ``OriginalMessage``; boto3 raises ``client.exceptions.ModelError``
  whose message quotes the handler's (naming the bad instance);
* an unknown endpoint name -> ``ValidationError`` (HTTP 400).

``service.faults`` injects failures for resilience tests (a 5xx ModelError, throttling,
service unavailable, or a delay) for the next N calls.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from vidsift.contract import LOCAL_ACCOUNT
from vidsift.local.httpservice import LocalService

log = logging.getLogger(__name__)

REGION = "us-east-1"
VARIANT = "AllTraffic"
INFERENCE_CODE = Path(__file__).resolve().parents[2] / "sagemaker" / "code" / "inference.py"
MODULE_NAME = "vidsift_sagemaker_inference"
#: What real-time endpoints accept in one request (serverless: 4 MB). Frames go by S3 URI.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
LOCAL_S3_CLIENT_KWARGS = {
    "aws_access_key_id": "vidsift-local",
    "aws_secret_access_key": "vidsift-local",
    "region_name": REGION,
}
_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations/?$")
_MODULE_LOCK = threading.Lock()


def load_inference_module(path: Path | None = None) -> ModuleType:
    """Import sagemaker/code/inference.py by path, once per process (it is not a package)."""
    path = Path(path or os.environ.get("VIDSIFT_INFERENCE_CODE") or INFERENCE_CODE)
    with _MODULE_LOCK:
        module = sys.modules.get(MODULE_NAME)
        if module is not None and Path(module.__file__ or "") == path:
            return module
        spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(f"no inference handler at {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE_NAME] = module  # dataclasses look their module up there
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(MODULE_NAME, None)
            raise
        return module


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One injected answer: the runtime's status and error type, after an optional delay."""

    kind: str
    status: int = 200
    error_type: str | None = None
    message: str = ""
    original_status: int | None = None
    delay_s: float = 0.0


FAULT_KINDS = {
    # The container answered 5xx: detect_people treats it as transient and retries.
    "model_error": dict(status=424, error_type="ModelError", original_status=500, message="injected model failure"),
    "internal_failure": dict(status=500, error_type="InternalFailure", message="An internal failure occurred."),
    "service_unavailable": dict(status=503, error_type="ServiceUnavailable", message="Service unavailable."),
    "throttling": dict(status=400, error_type="ThrottlingException", message="Rate exceeded"),
    "delay": dict(),
}


class Faults:
    """Failures queued for the next calls; thread-safe, consumed one per invocation."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def inject(self, kind: str, times: int = 1, *, delay_s: float = 0.0) -> None:
        """Make the next ``times`` invocations fail as ``kind`` (see FAULT_KINDS), or just wait."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}: one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind=kind, delay_s=delay_s, **FAULT_KINDS[kind])  # type: ignore[arg-type]
        with self._lock:
            self._queue.extend([fault] * times)

    def clear(self) -> None:
        """Drop every queued fault, so the next test starts with an endpoint that answers."""
        with self._lock:
            self._queue.clear()

    def take(self) -> Fault | None:
        """The next queued fault for this invocation, or None to answer normally."""
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)


# --------------------------------------------------------------------------- the endpoint


class Endpoint:
    """One loaded model behind one endpoint name; counts what it served."""

    def __init__(self, name: str, module: ModuleType, model: Any) -> None:
        self.name = name
        self.module = module
        self.model = model
        self.faults = Faults()
        self.invocations = 0
        self.errors = 0
        self._count_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """The id of the loaded model (the inference code's), which the people rows record."""
        return str(self.model.model_id)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
        """The container's chain; raises what the handler raises."""
        with self._count_lock:
            self.invocations += 1
        inf = self.module
        inf.check_accept(accept)
        data = inf.input_fn(body, content_type)
        prediction = inf.predict_fn(data, self.model)
        return inf.output_fn(prediction, accept)


class _Handler(BaseHTTPRequestHandler):
    endpoint: ClassVar[Endpoint]
    protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses its connection
    server_version = "vidsift-local-sagemaker-runtime"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, error_type: str, message: str, **extra: Any) -> None:
        doc = {"ErrorCode": extra.pop("ErrorCode", error_type), "Message": message, **extra}
        self._send(
            status,
            json.dumps(doc).encode(),
            {"Content-Type": "application/json", "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/"},
        )

    def _model_error(self, original_status: int, original_message: str) -> None:
        ep = self.endpoint
        with ep._count_lock:
            ep.errors += 1
        side = "client" if original_status < 500 else "server"
        log_group = f"/aws/sagemaker/Endpoints/{ep.name}"
        self._error(
            424,
            "ModelError",
            f'Received {side} error ({original_status}) from primary with message "{original_message}". '
            f"See the log group {log_group} in account {LOCAL_ACCOUNT} for more information.",
            ErrorCode=f"{side.upper()}_ERROR_FROM_MODEL",
            OriginalStatusCode=original_status,
            OriginalMessage=original_message,
            LogStreamArn=f"arn:aws:logs:{REGION}:{LOCAL_ACCOUNT}:log-group:{log_group}",
        )

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self) -> None:
        if self.path == "/ping":  # what a serving container answers; handy for readiness checks
            self._send(200, b"", {})
        else:
            self._error(404, "UnknownOperationException", f"no operation at GET {self.path}")

    def do_POST(self) -> None:
        body = self._read_body()  # always drained, so the keep-alive connection stays usable
        match = _PATH.match(self.path.split("?", 1)[0])
        if not match:
            self._error(404, "UnknownOperationException", f"no operation at POST {self.path}")
            return
        ep = self.endpoint
        if match["name"] != ep.name:
            self._error(400, "ValidationError", f"Endpoint {match['name']} of account {LOCAL_ACCOUNT} not found.")
            return
        if len(body) > MAX_PAYLOAD_BYTES:
            self._error(
                400,
                "ValidationError",
                f"Request payload of {len(body)} bytes exceeds the maximum of {MAX_PAYLOAD_BYTES} bytes.",
            )
            return
        fault = ep.faults.take()
        if fault is not None:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.error_type == "ModelError":
                self._model_error(fault.original_status or 500, fault.message)
                return
            if fault.error_type is not None:
                self._error(fault.status, fault.error_type, fault.message)
                return
        try:
            out, media = ep.invoke(body, self.headers.get("Content-Type"), self.headers.get("Accept"))
        except ep.module.RequestError as exc:
            self._model_error(int(exc.status_code), str(exc))
            return
        except Exception as exc:  # the container would answer 500 and log the traceback
            log.exception("inference failed on endpoint %s", ep.name)
            self._model_error(500, f"{type(exc).__name__}: {exc}")
            return
        self._send(200, out, {"Content-Type": media, "x-Amzn-Invoked-Production-Variant": VARIANT})


class SageMakerRuntimeService(LocalService):
    """The started HTTP service, with the endpoint it serves and its fault switch."""

    def __init__(self, endpoint: Endpoint, port: int = 0) -> None:
        handler = type("SageMakerRuntimeHandler", (_Handler,), {"endpoint": endpoint})
        super().__init__(handler, port)
        self.endpoint = endpoint

    @property
    def endpoint_name(self) -> str:
        """The one endpoint name this runtime answers for (the contract's), as detect_people calls it."""
        return self.endpoint.name

    @property
    def model_id(self) -> str:
        """The model the endpoint runs, for the run's summary and the tests."""
        return self.endpoint.model_id

    @property
    def faults(self) -> Faults:
        """The endpoint's fault switch, for resilience tests to fail the next invocations."""
        return self.endpoint.faults


def serve(
    port: int = 0,
    *,
    endpoint_name: str,
    s3_endpoint_url: str | None = None,
    backend: str = "auto",
    model_dir: str | os.PathLike[str] | None = None,
) -> SageMakerRuntimeService:
    """Load the model once and start answering InvokeEndpoint for ``endpoint_name``.

    ``s3_endpoint_url`` is handed to the handler's S3 client (for ``s3_uri`` instances)
    instead of being written to os.environ, so other code in the process is unaffected.
    """
    module = load_inference_module()
    # The local S3 takes any credentials; passing them keeps the caller's environment untouched.
    s3_kwargs = LOCAL_S3_CLIENT_KWARGS if s3_endpoint_url else None
    model = module.load_model(
        model_dir, backend=backend, s3_endpoint_url=s3_endpoint_url, s3_client_kwargs=s3_kwargs
    )
    service = SageMakerRuntimeService(Endpoint(endpoint_name, module, model), port)
    service.start()
    log.info("local SageMaker runtime for %s (%s) at %s", endpoint_name, model.model_id, service.url)
    return service
