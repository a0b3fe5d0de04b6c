"""The local Rekognition DetectFaces, through a real boto3 client and raw HTTP.

The answers are checked against botocore's own service model for Rekognition, the faces
against photos that ship inside installed packages, and the errors against the exception
classes boto3 builds from that model.
"""

from __future__ import annotations

import base64
import http.client
import json
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import cv2
import matplotlib.cbook
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from skimage import data

from vidsift.local import rekognition

REGION = "us-east-1"
BUCKET = "people"
WITH_FACES = ("astronaut", "grace_hopper", "camera")
WITHOUT_FACES = ("coffee", "chelsea")
ATTRIBUTES = {"AgeRange", "Gender", "Emotions", "Smile", "EyesOpen", "MouthOpen"}


def jpeg(name: str) -> bytes:
    """A bundled photo as JPEG bytes, as a frame would arrive."""
    if name == "grace_hopper":
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
            return fh.read()
    image = getattr(data, name)()
    bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def png(name: str) -> bytes:
    image = cv2.imdecode(np.frombuffer(jpeg(name), np.uint8), cv2.IMREAD_COLOR)
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def moto_s3(moto_url: str) -> Iterator[str]:
    url = moto_url
    s3 = boto3.client("s3", endpoint_url=url, region_name=REGION,
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket=BUCKET)
    for name in WITH_FACES + WITHOUT_FACES:
        s3.put_object(Bucket=BUCKET, Key=f"frames/{name}.jpg", Body=jpeg(name))
    s3.put_object(Bucket=BUCKET, Key="frames/astronaut.png", Body=png("astronaut"))
    s3.put_object(Bucket=BUCKET, Key="frames/not-an-image.jpg", Body=b"plain text, not a JPEG")
    yield url


@pytest.fixture(scope="module")
def service(moto_s3: str) -> Iterator[rekognition.RekognitionService]:
    """One service (models loaded once) for the module, with a scratch HOME."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", tempfile.mkdtemp(prefix="vidsift-rekognition-home-"))
        svc = rekognition.serve(s3_endpoint_url=moto_s3)
        assert svc.analyzer.has_attributes, f"face attribute models unavailable: {svc.analyzer.attributes_error}"
        yield svc
        svc.stop()


def make_client(url: str, attempts: int = 1) -> Any:
    return boto3.client(
        "rekognition", endpoint_url=url, region_name=REGION,
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}),
    )


@pytest.fixture(scope="module")
def client(service: rekognition.RekognitionService) -> Any:
    """No retries: each error the service sends reaches the test."""
    return make_client(service.url)


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "service" in request.fixturenames:
        request.getfixturevalue("service").clear_faults()


def raw_post(url: str, body: bytes, target: str = "RekognitionService.DetectFaces") -> tuple[int, dict, dict]:
    """A request boto3 would refuse to send (bad JSON, missing fields): status, headers, JSON."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("POST", "/", body=body, headers={
            "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
    finally:
        conn.close()


def check_shape(value: Any, shape: Any, path: str = "") -> None:
    """Fail on anything in ``value`` that botocore's shape does not declare, or mistypes.

    botocore's parser silently drops unknown members, so this walks the raw JSON.
    """
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), path
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{path}: not in the {shape.name} shape: {unknown}"
        for key, item in value.items():
            check_shape(item, shape.members[key], f"{path}.{key}")
    elif kind == "list":
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            check_shape(item, shape.member, f"{path}[{i}]")
    elif kind == "string":
        assert isinstance(value, str), path
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in {shape.name}"
    elif kind == "float":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), path
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        assert lo is None or value >= lo, f"{path}: {value} < {lo}"
        assert hi is None or value <= hi, f"{path}: {value} > {hi}"
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), path
        assert value >= shape.metadata.get("min", value), path
    elif kind == "boolean":
        assert isinstance(value, bool), path
    else:
        raise AssertionError(f"{path}: unexpected shape type {kind}")


# --- answers ------------------------------------------------------------------------------


def test_raw_answer_matches_botocores_response_model(service: rekognition.RekognitionService, client: Any) -> None:
    body = json.dumps({"Image": {"Bytes": base64.b64encode(jpeg("astronaut")).decode()}, "Attributes": ["ALL"]})
    status, headers, answer = raw_post(service.url, body.encode())
    assert status == 200
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-requestid"]
    output = client.meta.service_model.operation_model("DetectFaces").output_shape
    check_shape(answer, output)
    (face,) = answer["FaceDetails"]
    assert set(face) >= ATTRIBUTES | {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}
    for key in ("Width", "Height", "Left", "Top"):
        assert 0 <= face["BoundingBox"][key] <= 1
    assert {lm["Type"] for lm in face["Landmarks"]} >= {"eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"}


@pytest.mark.parametrize("name", WITH_FACES + WITHOUT_FACES)
def test_bytes_finds_the_faces_there_are(client: Any, name: str) -> None:
    answer = client.detect_faces(Image={"Bytes": jpeg(name)}, Attributes=["ALL"])
    assert len(answer["FaceDetails"]) == (1 if name in WITH_FACES else 0)


@pytest.mark.parametrize("name", WITH_FACES + WITHOUT_FACES)
def test_s3_object_finds_the_faces_there_are(client: Any, name: str) -> None:
    answer = client.detect_faces(Image={"S3Object": {"Bucket": BUCKET, "Name": f"frames/{name}.jpg"}})
    assert len(answer["FaceDetails"]) == (1 if name in WITH_FACES else 0)


def test_s3_object_version_is_honoured(moto_s3: str, client: Any) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name=REGION,
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="versioned", Key="frame.jpg", Body=jpeg("astronaut"))["VersionId"]
    s3.put_object(Bucket="versioned", Key="frame.jpg", Body=jpeg("coffee"))
    old = client.detect_faces(Image={"S3Object": {"Bucket": "versioned", "Name": "frame.jpg", "Version": first}})
    latest = client.detect_faces(Image={"S3Object": {"Bucket": "versioned", "Name": "frame.jpg"}})
    assert (len(old["FaceDetails"]), len(latest["FaceDetails"])) == (1, 0)
    with pytest.raises(client.exceptions.InvalidS3ObjectException):
        client.detect_faces(Image={"S3Object": {"Bucket": "versioned", "Name": "frame.jpg", "Version": "nope"}})


def test_too_large_s3_object_is_image_too_large(moto_s3: str, client: Any) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name=REGION,
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.put_object(Bucket=BUCKET, Key="frames/huge.jpg",
                  Body=jpeg("astronaut") + b"\0" * (rekognition.MAX_S3_IMAGE + 1))
    with pytest.raises(client.exceptions.ImageTooLargeException):
        client.detect_faces(Image={"S3Object": {"Bucket": BUCKET, "Name": "frames/huge.jpg"}})
    s3.delete_object(Bucket=BUCKET, Key="frames/huge.jpg")


def test_s3_and_bytes_give_the_same_answer(client: Any) -> None:
    by_s3 = client.detect_faces(Image={"S3Object": {"Bucket": BUCKET, "Name": "frames/astronaut.png"}},
                                Attributes=["ALL"])["FaceDetails"]
    by_bytes = client.detect_faces(Image={"Bytes": png("astronaut")}, Attributes=["ALL"])["FaceDetails"]
    assert by_s3 == by_bytes
    assert by_s3[0]["Gender"]["Value"] == "Female"


def test_attributes_default_subset_and_all(service: rekognition.RekognitionService, client: Any) -> None:
    image = {"Bytes": jpeg("grace_hopper")}
    default = client.detect_faces(Image=image)
    (plain,) = default["FaceDetails"]
    assert not ATTRIBUTES & set(plain)
    assert {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"} <= set(plain)
    (gender_only,) = client.detect_faces(Image=image, Attributes=["GENDER", "EYES_OPEN"])["FaceDetails"]
    assert ATTRIBUTES & set(gender_only) == {"Gender", "EyesOpen"}
    (everything,) = client.detect_faces(Image=image, Attributes=["DEFAULT", "ALL"])["FaceDetails"]
    assert set(everything) >= ATTRIBUTES
    # Asked for, but no local model estimates them: left out, never made up.
    (unestimated,) = client.detect_faces(Image=image, Attributes=["BEARD", "SUNGLASSES"])["FaceDetails"]
    assert not {"Beard", "Sunglasses"} & set(unestimated)


def test_answers_name_the_analyser(service: rekognition.RekognitionService, client: Any) -> None:
    answer = client.detect_faces(Image={"Bytes": jpeg("astronaut")}, Attributes=["ALL"])
    header = answer["ResponseMetadata"]["HTTPHeaders"]["x-vidsift-analyzer"]
    assert header == service.analyzer.analyzer_id
    assert header.startswith("yuface-") and "+human-" in header


def test_concurrent_calls_all_answer(client: Any) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def call(name: str) -> None:
        try:
            results.append(len(make_client(client.meta.endpoint_url).detect_faces(
                Image={"Bytes": jpeg(name)}, Attributes=["ALL"])["FaceDetails"]))
        except BaseException as exc:  # collected and re-raised by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in ("astronaut", "coffee", "grace_hopper")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert sorted(results) == [0, 1, 1]


# --- errors -------------------------------------------------------------------------------


def test_not_an_image_is_invalid_image_format(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidImageFormatException):
        client.detect_faces(Image={"Bytes": b"GIF89a not a JPEG or PNG"})
    with pytest.raises(client.exceptions.InvalidImageFormatException):
        client.detect_faces(Image={"Bytes": b"\xff\xd8\xff\xe0 a truncated JPEG"})
    with pytest.raises(client.exceptions.InvalidImageFormatException):
        client.detect_faces(Image={"S3Object": {"Bucket": BUCKET, "Name": "frames/not-an-image.jpg"}})


def test_missing_s3_object_is_invalid_s3_object(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidS3ObjectException):
        client.detect_faces(Image={"S3Object": {"Bucket": BUCKET, "Name": "frames/nobody-here.jpg"}})
    with pytest.raises(client.exceptions.InvalidS3ObjectException):
        client.detect_faces(Image={"S3Object": {"Bucket": "no-such-bucket", "Name": "x.jpg"}})


def test_too_large_bytes_is_image_too_large(client: Any) -> None:
    big = jpeg("astronaut") + b"\0" * (rekognition.MAX_BYTES_IMAGE + 1)
    with pytest.raises(client.exceptions.ImageTooLargeException):
        client.detect_faces(Image={"Bytes": big})


def test_unknown_operation(service: rekognition.RekognitionService, client: Any) -> None:
    with pytest.raises(ClientError) as err:
        client.detect_labels(Image={"Bytes": jpeg("astronaut")})
    assert err.value.response["Error"]["Code"] == "UnknownOperationException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    status, _, body = raw_post(service.url, b"{}", target="")
    assert (status, body["__type"]) == (400, "UnknownOperationException")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "SerializationException"),
        (b"[1, 2]", "SerializationException"),
        (b"{}", "InvalidParameterException"),
        (b'{"Image": {}}', "InvalidParameterException"),
        (b'{"Image": {"Bytes": "aGk=", "S3Object": {"Bucket": "people", "Name": "a.jpg"}}}',
         "InvalidParameterException"),
        (b'{"Image": {"Bytes": "not base64!"}}', "SerializationException"),
        (b'{"Image": {"S3Object": {"Bucket": "people"}}}', "InvalidParameterException"),
        (b'{"Image": {"Bytes": "aGk="}, "Attributes": ["EVERYTHING"]}', "InvalidParameterException"),
        (b'{"Image": {"Bytes": "aGk="}, "Attributes": "ALL"}', "InvalidParameterException"),
    ],
    ids=["bad-json", "not-an-object", "no-image", "empty-image", "both-sources", "bad-base64",
         "s3-without-key", "unknown-attribute", "attributes-not-a-list"],
)
def test_malformed_requests(service: rekognition.RekognitionService, body: bytes, code: str) -> None:
    status, headers, answer = raw_post(service.url, body)
    assert status == 400
    assert answer["__type"] == code
    assert answer["message"]
    assert headers["content-type"] == "application/x-amz-json-1.1"


def test_keeps_serving_after_errors(service: rekognition.RekognitionService, client: Any) -> None:
    for body in (b"{not json", b"{}", b'{"Image": {"Bytes": "aGk="}}'):
        assert raw_post(service.url, body)[0] == 400
    with pytest.raises(client.exceptions.InvalidS3ObjectException):
        client.detect_faces(Image={"S3Object": {"Bucket": BUCKET, "Name": "missing.jpg"}})
    assert len(client.detect_faces(Image={"Bytes": jpeg("astronaut")})["FaceDetails"]) == 1


# --- fault switch -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [("ThrottlingException", 400), ("ProvisionedThroughputExceededException", 400), ("InternalServerError", 500)],
)
def test_fault_switch_raises_the_modelled_exception(
    service: rekognition.RekognitionService, client: Any, error: str, status: int
) -> None:
    service.fail_next(1, error)
    with pytest.raises(getattr(client.exceptions, error)) as err:
        client.detect_faces(Image={"Bytes": jpeg("astronaut")})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert service.pending_faults == 0
    assert len(client.detect_faces(Image={"Bytes": jpeg("astronaut")})["FaceDetails"]) == 1


def test_fault_switch_counts_down_through_client_retries(service: rekognition.RekognitionService) -> None:
    retrying = make_client(service.url, attempts=3)
    before = service.detect_faces_calls
    service.fail_next(2, "ThrottlingException")
    answer = retrying.detect_faces(Image={"Bytes": jpeg("astronaut")})
    assert len(answer["FaceDetails"]) == 1
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert service.detect_faces_calls - before == 3


def test_fault_switch_custom_status_and_clear(service: rekognition.RekognitionService, client: Any) -> None:
    service.fail_next(1, "ThrottlingException", status=503)
    with pytest.raises(client.exceptions.ThrottlingException) as err:
        client.detect_faces(Image={"Bytes": jpeg("coffee")})
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    service.fail_next(5, "InternalServerError")
    service.clear_faults()
    assert client.detect_faces(Image={"Bytes": jpeg("coffee")})["FaceDetails"] == []


def test_health_and_stop(moto_s3: str) -> None:
    """A detection-only service starts fast, says what it runs, and stops cleanly."""
    svc = rekognition.serve(s3_endpoint_url=moto_s3, attributes=False)
    try:
        host, port = svc.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/_vidsift/health")
        resp = conn.getresponse()
        assert resp.status == 200
        assert json.loads(resp.read())["analyzer"].startswith("yuface-")
        conn.close()
        (face,) = make_client(svc.url).detect_faces(Image={"Bytes": jpeg("astronaut")},
                                                    Attributes=["ALL"])["FaceDetails"]
        assert not ATTRIBUTES & set(face) and "Pose" not in face
    finally:
        svc.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection(host, int(port), timeout=2).request("GET", "/_vidsift/health")
