"""The local SageMaker runtime, driven by a real boto3 ``sagemaker-runtime`` client.

Frames live in a moto S3 server (a real HTTP server on loopback), so the endpoint reads
``s3://`` URIs over the network exactly as the cloud endpoint reads S3; the model is the
offline SSDLite backend, so detections are real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import cv2
import pytest
from botocore.config import Config

from vidsift.contract import local_names
from vidsift.local import sagemaker_runtime

ENDPOINT = local_names().endpoint
BUCKET = "vidsift-local-frames"
CREDS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


pytestmark = pytest.mark.usefixtures("ssdlite_alone")


@pytest.fixture(scope="module")
def s3_url(moto_url: str) -> Iterator[str]:
    url = moto_url
    s3 = boto3.client("s3", endpoint_url=url, **CREDS)
    s3.create_bucket(Bucket=BUCKET)
    for name in ("astronaut", "camera", "grace_hopper", "coffee", "chelsea", "rocket"):
        s3.put_object(Bucket=BUCKET, Key=f"frames/{name}.jpg", Body=jpeg(name))
    yield url


@pytest.fixture(scope="module")
def service(s3_url: str, ssdlite_alone: None) -> Iterator[sagemaker_runtime.SageMakerRuntimeService]:
    svc = sagemaker_runtime.serve(endpoint_name=ENDPOINT, s3_endpoint_url=s3_url, backend="ssdlite")
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def runtime(service: sagemaker_runtime.SageMakerRuntimeService) -> Any:
    # No retries: each call below must be exactly one request (faults count requests).
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=service.url,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=60),
        **CREDS,
    )


@pytest.fixture(autouse=True)
def _no_leftover_faults(service: sagemaker_runtime.SageMakerRuntimeService) -> Iterator[None]:
    service.faults.clear()
    yield
    service.faults.clear()


def invoke_json(runtime: Any, payload: dict[str, Any], endpoint: str = ENDPOINT) -> tuple[dict[str, Any], Any]:
    resp = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="application/json", Accept="application/json", Body=json.dumps(payload)
    )
    return json.loads(resp["Body"].read()), resp


def photo(name: str) -> Any:
    """A bundled photo (scikit-image, matplotlib) as BGR, as the endpoint decodes it."""
    if name == "grace_hopper":
        from matplotlib import cbook

        return cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_COLOR)
    from skimage import data

    return cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)


def jpeg(name: str) -> bytes:
    ok, buf = cv2.imencode(".jpg", photo(name), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def uri(name: str) -> dict[str, str]:
    return {"s3_uri": f"s3://{BUCKET}/frames/{name}.jpg"}


def assert_serves(runtime: Any) -> None:
    doc, _ = invoke_json(runtime, {"instances": [uri("astronaut")]})
    assert doc["predictions"][0]["boxes"], "the endpoint stopped serving after a bad request"


def test_batch_of_s3_uris(runtime: Any) -> None:
    names = ["astronaut", "coffee", "camera", "chelsea", "grace_hopper", "rocket"]
    doc, resp = invoke_json(runtime, {"instances": [uri(n) for n in names], "min_confidence": 0.5})
    assert resp["ContentType"] == "application/json"
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    assert doc["model"] == "ssdlite_mobilenet_v2_person"
    found = {n: len(p["boxes"]) for n, p in zip(names, doc["predictions"], strict=True)}
    assert found["astronaut"] >= 1 and found["camera"] >= 1 and found["grace_hopper"] >= 1, found
    assert found["coffee"] == found["chelsea"] == found["rocket"] == 0, found


def test_raw_jpeg_body(runtime: Any) -> None:
    resp = runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/jpeg", Body=jpeg("grace_hopper"))
    doc = json.loads(resp["Body"].read())
    assert len(doc["predictions"]) == 1
    box = doc["predictions"][0]["boxes"][0]
    assert box["confidence"] > 0.9 and 0 <= box["left"] < box["left"] + box["width"] <= 1


def test_raw_png_body(runtime: Any) -> None:
    ok, png = cv2.imencode(".png", photo("camera"))
    assert ok
    resp = runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png.tobytes())
    assert json.loads(resp["Body"].read())["predictions"][0]["boxes"]


def model_error(runtime: Any, **kwargs: Any) -> Any:
    with pytest.raises(runtime.exceptions.ModelError) as err:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, **kwargs)
    return err.value


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"ContentType": "image/jpeg", "Body": b"this is not a jpeg"}, 400, "instance 0: not a decodable image"),
        ({"ContentType": "application/json", "Body": b'{"instances": []}'}, 400, "empty batch"),
        (
            {"ContentType": "application/json", "Body": json.dumps({"instances": [uri("astronaut"), uri("nobody")]})},
            404,
            f"instance 1: s3://{BUCKET}/frames/nobody.jpg does not exist",
        ),
        (
            {"ContentType": "application/json", "Body": json.dumps({"instances": [uri("coffee")] * 33})},
            413,
            "batch of 33 instances is over the limit of 32 (MAX_BATCH)",
        ),
        ({"ContentType": "application/json", "Body": b"{not json"}, 400, "not valid JSON"),
        ({"ContentType": "text/csv", "Body": b"1,2,3"}, 415, "unsupported content type 'text/csv'"),
    ],
)
def test_bad_requests_are_model_errors_and_service_goes_on(
    runtime: Any, kwargs: dict[str, Any], status: int, words: str
) -> None:
    err = model_error(runtime, **kwargs)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err.response["Error"]["Code"] == "ModelError"
    assert err.response["OriginalStatusCode"] == status
    assert words in err.response["OriginalMessage"]
    assert words in str(err)  # boto3's message carries the handler's
    assert_serves(runtime)


def test_unknown_endpoint_is_a_validation_error(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError) as err:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="image/jpeg", Body=jpeg("coffee"))
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Endpoint no-such-endpoint of account" in str(err.value) and "not found" in str(err.value)
    assert_serves(runtime)


def test_max_batch_follows_env(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BATCH", "2")
    err = model_error(
        runtime, ContentType="application/json", Body=json.dumps({"instances": [uri("coffee")] * 3})
    )
    assert "over the limit of 2" in str(err)
    doc, _ = invoke_json(runtime, {"instances": [uri("coffee")] * 2})
    assert len(doc["predictions"]) == 2


def test_concurrent_callers(service: sagemaker_runtime.SageMakerRuntimeService) -> None:
    """The threaded server and the model's lock keep parallel callers apart."""
    results: list[int] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            client = boto3.client("sagemaker-runtime", endpoint_url=service.url, **CREDS)
            resp = client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/jpeg", Body=jpeg(name))
            results.append(len(json.loads(resp["Body"].read())["predictions"][0]["boxes"]))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("astronaut", "coffee", "camera", "rocket")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(results) == 4
    assert sorted(r > 0 for r in results) == [False, False, True, True]


def test_faults(service: sagemaker_runtime.SageMakerRuntimeService, runtime: Any) -> None:
    service.faults.inject("model_error", times=2)
    for _ in range(2):
        err = model_error(runtime, ContentType="image/jpeg", Body=jpeg("coffee"))
        assert err.response["OriginalStatusCode"] == 500
    service.faults.inject("service_unavailable")
    with pytest.raises(runtime.exceptions.ServiceUnavailable):
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/jpeg", Body=jpeg("coffee"))
    service.faults.inject("internal_failure")
    with pytest.raises(runtime.exceptions.InternalFailure):
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/jpeg", Body=jpeg("coffee"))
    service.faults.inject("delay", delay_s=0.3)
    start = time.monotonic()
    assert_serves(runtime)
    assert time.monotonic() - start >= 0.3
    with pytest.raises(ValueError, match="unknown fault"):
        service.faults.inject("meteor")
    assert len(service.faults) == 0
    assert_serves(runtime)


def test_counters_and_identity(service: sagemaker_runtime.SageMakerRuntimeService) -> None:
    assert service.endpoint_name == ENDPOINT == "vidsift-local-person-detector"
    assert service.model_id == "ssdlite_mobilenet_v2_person"
    assert service.endpoint.invocations > 0 and service.endpoint.errors > 0


def test_yolo_backend_behind_the_runtime(
    s3_url: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cloud's backend through the same runtime (untrained yolo11n: contract, not accuracy)."""
    pytest.importorskip(
        "ultralytics",
        reason="ultralytics (and torch) are not in the project venv; see tests/test_inference.py for the YOLO venv",
    )
    home = tmp_path_factory.mktemp("yolo-home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(home / "yolo"))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_WEIGHTS", "yolo11n.yaml")
    svc = sagemaker_runtime.serve(endpoint_name="yolo-endpoint", s3_endpoint_url=s3_url, backend="yolo")
    try:
        client = boto3.client("sagemaker-runtime", endpoint_url=svc.url, **CREDS)
        doc, _ = invoke_json(client, {"instances": [uri("astronaut"), uri("coffee")], "min_confidence": 0.0},
                             endpoint="yolo-endpoint")
        assert doc["model"] == "yolo11n" and len(doc["predictions"]) == 2
        with pytest.raises(client.exceptions.ModelError, match="does not exist"):
            invoke_json(client, {"instances": [uri("nobody")]}, endpoint="yolo-endpoint")
    finally:
        svc.stop()
