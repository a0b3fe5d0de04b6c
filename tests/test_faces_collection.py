"""Known faces: the local Rekognition's collections with the real face descriptor model, the
``vidsift faces`` commands against it, and the cloud path of analyze_faces' matching with
botocore's Stubber.

Photos ship inside installed packages: the astronaut (Eileen Collins), Grace Hopper and the
cameraman. "Same person" is each photo against altered copies of itself (mirrored, half
size, noisy, recompressed, darker, inside a larger frame); "different person" is each
against the others. bench/bench_alerts.py --similarity prints the full distribution.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber
from PIL import Image

from vidsift import aws
from vidsift.cli import build_parser
from vidsift.cli import faces as faces_cli
from vidsift.core import matching
from vidsift.local import rekognition
from vidsift.stages import known_faces
from vidsift.testing.samples import jpeg as samples_jpeg
from vidsift.testing.samples import photo

REGION = "us-east-1"
COLLECTION = "known-faces"


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """The test equipment's JPEG at this module's quality (90)."""
    return samples_jpeg(rgb, quality)


def variants(name: str) -> dict[str, bytes]:
    """Altered copies of a bundled photo, as a camera might show the same face."""
    rgb = photo(name)
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(1)
    noisy = np.clip(rgb.astype(np.int16) + rng.normal(0, 10, rgb.shape), 0, 255).astype(np.uint8)
    frame = np.full((720, 1280, 3), 40, np.uint8)
    frame[100:100 + h, 500:500 + w] = rgb
    return {
        "mirrored": jpeg(rgb[:, ::-1]),
        "half size": jpeg(np.asarray(Image.fromarray(rgb).resize((w // 2, h // 2), Image.Resampling.LANCZOS))),
        "noisy": jpeg(noisy),
        "jpeg q30": jpeg(rgb, 30),
        "darker": jpeg((rgb * 0.6).astype(np.uint8)),
        "in a 1280x720 frame": jpeg(frame),
    }


def side_by_side(*names: str) -> np.ndarray:
    """Two people in one frame (each photo scaled to 512 px high)."""
    tiles = [np.asarray(Image.fromarray(photo(n)).resize((512 * photo(n).shape[1] // photo(n).shape[0], 512)))
             for n in names]
    return np.concatenate(tiles, axis=1)


@pytest.fixture(scope="module")
def service(moto_url: str) -> Iterator[rekognition.RekognitionService]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", tempfile.mkdtemp(prefix="vidsift-faces-home-"))
        svc = rekognition.serve(s3_endpoint_url=moto_url)
        assert svc.analyzer.has_attributes, f"face models unavailable: {svc.analyzer.attributes_error}"
        yield svc
        svc.stop()


@pytest.fixture(scope="module")
def client(service: rekognition.RekognitionService) -> Any:
    return boto3.client("rekognition", endpoint_url=service.url, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def collection(client: Any) -> Iterator[str]:
    client.create_collection(CollectionId=COLLECTION)
    yield COLLECTION
    client.delete_collection(CollectionId=COLLECTION)


def index(client: Any, collection: str, name: str, image: bytes) -> dict[str, Any]:
    return client.index_faces(CollectionId=collection, Image={"Bytes": image},
                              ExternalImageId=matching.encode_name(name), MaxFaces=1)


def search(client: Any, collection: str, image: bytes, threshold: float = 90) -> list[dict[str, Any]]:
    return client.search_faces_by_image(CollectionId=collection, Image={"Bytes": image},
                                        FaceMatchThreshold=threshold)["FaceMatches"]


# --- the same person matches, a different one does not ------------------------------------------


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_same_person_matches_and_others_do_not(client: Any, collection: str, name: str) -> None:
    index(client, collection, name, jpeg(photo(name)))
    for label, image in variants(name).items():
        found = search(client, collection, image)
        assert [matching.decode_name(m["Face"]["ExternalImageId"]) for m in found] == [name], label
        assert found[0]["Similarity"] >= 90, label
    for other in {"astronaut", "grace_hopper", "camera"} - {name}:
        assert search(client, collection, jpeg(photo(other))) == [], other
        (below,) = search(client, collection, jpeg(photo(other)), threshold=0)
        assert below["Similarity"] < 80, other  # well under the threshold, not just under it


def test_the_nearest_person_of_several_is_named(client: Any, collection: str) -> None:
    index(client, collection, "Eileen Collins", jpeg(photo("astronaut")))
    index(client, collection, "Grace Hopper", jpeg(photo("grace_hopper")))
    index(client, collection, "The Cameraman", jpeg(photo("camera")))
    for name, who in (("astronaut", "Eileen Collins"), ("grace_hopper", "Grace Hopper")):
        found = search(client, collection, variants(name)["noisy"], threshold=0)
        assert matching.decode_name(found[0]["Face"]["ExternalImageId"]) == who
        assert found[0]["Similarity"] > found[1]["Similarity"] + 10
        assert [m["Similarity"] for m in found] == sorted((m["Similarity"] for m in found), reverse=True)


def test_search_uses_the_largest_face(client: Any, collection: str) -> None:
    index(client, collection, "Grace Hopper", jpeg(photo("grace_hopper")))
    pair = side_by_side("astronaut", "grace_hopper")  # Grace's face is the larger one
    resp = client.search_faces_by_image(CollectionId=collection, Image={"Bytes": jpeg(pair)}, FaceMatchThreshold=90)
    assert resp["SearchedFaceBoundingBox"]["Left"] > 0.5
    assert [matching.decode_name(m["Face"]["ExternalImageId"]) for m in resp["FaceMatches"]] == ["Grace Hopper"]


def test_remove_forgets_the_person(client: Any, collection: str) -> None:
    ids = [index(client, collection, "Grace Hopper", image)["FaceRecords"][0]["Face"]["FaceId"]
           for image in (jpeg(photo("grace_hopper")), variants("grace_hopper")["mirrored"])]
    assert len(search(client, collection, variants("grace_hopper")["noisy"])) == 2
    resp = client.delete_faces(CollectionId=collection, FaceIds=[*ids, "00000000-0000-0000-0000-000000000000"])
    assert sorted(resp["DeletedFaces"]) == sorted(ids)
    assert search(client, collection, variants("grace_hopper")["noisy"]) == []
    assert client.list_faces(CollectionId=collection)["Faces"] == []


# --- Rekognition's shapes and errors ---------------------------------------------------------------


def check_shape(value: Any, shape: Any, path: str = "") -> None:
    """Fail on anything in the raw JSON that botocore's shape does not declare, or mistypes."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), path
        assert not set(value) - set(shape.members), f"{path}: not in {shape.name}: {set(value) - set(shape.members)}"
        for key, item in value.items():
            check_shape(item, shape.members[key], f"{path}.{key}")
    elif kind == "list":
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            check_shape(item, shape.member, f"{path}[{i}]")
    elif kind == "string":
        assert isinstance(value, str), path
        assert not shape.enum or value in shape.enum, f"{path}: {value!r}"
        pattern = shape.metadata.get("pattern")
        if pattern:
            import re

            assert re.fullmatch(pattern, value), f"{path}: {value!r} !~ {pattern}"
    elif kind in ("float", "double"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), path
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        assert (lo is None or value >= lo) and (hi is None or value <= hi), f"{path}: {value}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif kind == "timestamp":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), path
    elif kind == "boolean":
        assert isinstance(value, bool), path
    else:
        raise AssertionError(f"{path}: unexpected shape type {kind}")


def raw(url: str, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.request("POST", "/", body=json.dumps(request).encode(), headers={
            "X-Amz-Target": f"RekognitionService.{operation}", "Content-Type": "application/x-amz-json-1.1"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_every_answer_matches_botocores_model(service: rekognition.RekognitionService, client: Any) -> None:
    model = client.meta.service_model
    image = {"Bytes": base64.b64encode(jpeg(side_by_side("astronaut", "grace_hopper"))).decode()}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("CreateCollection", {"CollectionId": "shapes"}),
        ("IndexFaces", {"CollectionId": "shapes", "Image": image, "ExternalImageId": "Eileen:20Collins",
                        "MaxFaces": 1, "DetectionAttributes": ["ALL"]}),
        ("SearchFacesByImage", {"CollectionId": "shapes", "Image": image, "FaceMatchThreshold": 0}),
        ("ListFaces", {"CollectionId": "shapes"}),
        ("DescribeCollection", {"CollectionId": "shapes"}),
        ("ListCollections", {}),
    ]
    answers = {}
    for operation, request in calls:
        status, answer = raw(service.url, operation, request)
        assert status == 200, (operation, answer)
        check_shape(answer, model.operation_model(operation).output_shape, operation)
        answers[operation] = answer
    indexed = answers["IndexFaces"]
    assert len(indexed["FaceRecords"]) == 1 and indexed["UnindexedFaces"][0]["Reasons"] == ["EXCEEDS_MAX_FACES"]
    assert {"AgeRange", "Emotions"} <= set(indexed["FaceRecords"][0]["FaceDetail"])  # ALL was asked
    face_id = indexed["FaceRecords"][0]["Face"]["FaceId"]
    status, answer = raw(service.url, "DeleteFaces", {"CollectionId": "shapes", "FaceIds": [face_id]})
    check_shape(answer, model.operation_model("DeleteFaces").output_shape, "DeleteFaces")
    assert answers["DescribeCollection"]["FaceCount"] == 1 and answer["DeletedFaces"] == [face_id]
    status, answer = raw(service.url, "DeleteCollection", {"CollectionId": "shapes"})
    check_shape(answer, model.operation_model("DeleteCollection").output_shape, "DeleteCollection")
    assert answer == {"StatusCode": 200}


def test_errors_are_rekognitions(client: Any, collection: str) -> None:
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException):
        client.create_collection(CollectionId=collection)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.index_faces(CollectionId="nobody-made-this", Image={"Bytes": jpeg(photo("astronaut"))})
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_collection(CollectionId="nobody-made-this")
    with pytest.raises(client.exceptions.InvalidParameterException, match="no faces in the image"):
        client.search_faces_by_image(CollectionId=collection, Image={"Bytes": jpeg(photo("coffee"))})
    with pytest.raises(client.exceptions.InvalidParameterException):  # a space is outside ExternalImageId's pattern
        client.index_faces(CollectionId=collection, Image={"Bytes": jpeg(photo("astronaut"))},
                           ExternalImageId="Ada Lovelace")
    with pytest.raises(client.exceptions.InvalidPaginationTokenException):
        client.list_faces(CollectionId=collection, NextToken="not-a-token")
    with pytest.raises(client.exceptions.InvalidImageFormatException):
        client.search_faces_by_image(CollectionId=collection, Image={"Bytes": b"GIF89a not supported"})


def test_paging_lists_every_face_once(client: Any, collection: str) -> None:
    image = jpeg(photo("astronaut"))
    for i in range(3):
        index(client, collection, f"person {i}", image)
    seen, token = [], None
    while True:
        page = client.list_faces(CollectionId=collection, MaxResults=2, **({"NextToken": token} if token else {}))
        seen += [f["FaceId"] for f in page["Faces"]]
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 3
    assert len(aws_list(client, collection)) == 3


def aws_list(client: Any, collection: str) -> list[dict[str, Any]]:
    return client.list_faces(CollectionId=collection)["Faces"]


def test_collections_survive_a_restart_with_a_state_file(service: rekognition.RekognitionService, moto_url: str,
                                                         tmp_path: Path) -> None:
    state = tmp_path / "collections.json"
    first = rekognition.serve(s3_endpoint_url=moto_url, analyzer=service.analyzer, state_file=state)
    try:
        c = boto3.client("rekognition", endpoint_url=first.url, region_name=REGION, aws_access_key_id="t",
                         aws_secret_access_key="t")
        c.create_collection(CollectionId="kept")
        index(c, "kept", "Grace Hopper", jpeg(photo("grace_hopper")))
    finally:
        first.stop()
    second = rekognition.serve(s3_endpoint_url=moto_url, analyzer=service.analyzer, state_file=state)
    try:
        c = boto3.client("rekognition", endpoint_url=second.url, region_name=REGION, aws_access_key_id="t",
                         aws_secret_access_key="t")
        assert c.list_collections()["CollectionIds"] == ["kept"]
        (match,) = search(c, "kept", variants("grace_hopper")["jpeg q30"])
        assert matching.decode_name(match["Face"]["ExternalImageId"]) == "Grace Hopper"
    finally:
        second.stop()
    assert service.analyzer.has_attributes  # the shared analyser was not closed by the others


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Ada", "Ada Lovelace", "Zoë O'Neil-Smith", "李小龙", "a:b", "50%", "x.y_z-1"])
def test_names_survive_as_external_image_ids(name: str) -> None:
    import re

    encoded = matching.encode_name(name)
    assert re.fullmatch(r"[a-zA-Z0-9_.\-:]+", encoded)
    assert matching.decode_name(encoded) == name


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        matching.encode_name("  ")
    with pytest.raises(ValueError, match="too long"):
        matching.encode_name("é" * 50)


# --- vidsift faces ---------------------------------------------------------------------------------


@pytest.fixture
def faces(service: rekognition.RekognitionService, collection: str,
          monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", service.url)
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FACE_COLLECTION", raising=False)
    aws.reset_clients()
    parser = build_parser()  # the `vidsift` command itself: `vidsift faces` must be registered there

    def run(*argv: str) -> int:
        args = parser.parse_args(["faces", "--collection", collection, *argv])
        return int(args.func(args))

    yield run
    aws.reset_clients()


def test_cli_index_list_remove(faces: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               client: Any, collection: str) -> None:
    photos = []
    for label, image in list(variants("grace_hopper").items())[:2]:
        photos.append(tmp_path / f"{label}.jpg")
        photos[-1].write_bytes(image)
    (tmp_path / "cat.jpg").write_bytes(jpeg(photo("chelsea")))
    assert faces("index", "--name", "Grace Hopper", *map(str, photos)) == 0
    assert "2 of 2 photo(s) indexed for Grace Hopper" in capsys.readouterr().out
    assert faces("index", "--name", "Zoë", str(tmp_path / "cat.jpg"), str(tmp_path / "missing.jpg")) == 1
    err = capsys.readouterr().err
    assert "cat.jpg: refused (InvalidParameterException" in err or "cat.jpg: no usable face" in err
    assert "missing.jpg: cannot read" in err
    assert faces("index", "--name", "Eileen Collins", str(photos[0].with_name("a.jpg"))) == 1
    capsys.readouterr()
    (tmp_path / "eileen.jpg").write_bytes(jpeg(photo("astronaut")))
    assert faces("index", "--name", "Eileen Collins", str(tmp_path / "eileen.jpg")) == 0
    capsys.readouterr()
    assert faces("list", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["people"] == [
        {"name": "Eileen Collins", "faces": 1}, {"name": "Grace Hopper", "faces": 2}]
    assert faces("list") == 0
    assert "2 people, 3 faces" in capsys.readouterr().out
    assert faces("remove", "Grace Hopper") == 0
    assert "2 face(s) deleted" in capsys.readouterr().out
    assert faces("remove", "Grace Hopper") == 2
    assert [matching.decode_name(f["ExternalImageId"]) for f in aws_list(client, collection)] == ["Eileen Collins"]


def test_cli_names_a_missing_collection(faces: Callable[..., int], capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="vidsift")
    faces_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["faces", "--stage", "nowhere", "list"])
    assert faces_cli.collection_id(args) == "vidsift-nowhere-known-faces"
    assert args.func(args) == 2
    assert "collection vidsift-nowhere-known-faces does not exist" in capsys.readouterr().err


# --- the cloud path: one search per face, with crops --------------------------------------------------


def test_face_crops_centre_each_face_with_context() -> None:
    pair = side_by_side("astronaut", "grace_hopper")
    h, w = pair.shape[:2]
    boxes = [{"Left": 180 / w, "Top": 65 / h, "Width": 85 / w, "Height": 115 / h},   # the astronaut's face
             {"Left": 0.99, "Top": 0.99, "Width": 0.005, "Height": 0.005}]           # a tiny one in the corner
    big, tiny = (Image.open(io.BytesIO(c)) for c in matching.face_crops(jpeg(pair), boxes))
    assert big.size == (230, 230)  # 2 x the face's larger side, centred on it
    assert min(tiny.size) >= matching.MIN_CROP_SIDE  # Rekognition's minimum, upscaled


def test_match_faces_searches_each_face_crop_with_stubber(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What analyze_faces does in the cloud, request by request: is the collection empty, then
    one SearchFacesByImage per face, each with that face's crop (botocore's Stubber checks
    the requests against Rekognition's model)."""
    for key, value in {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                       "AWS_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_REKOGNITION", raising=False)
    aws.reset_clients()
    pair = side_by_side("astronaut", "grace_hopper")
    aws.client("s3").create_bucket(Bucket="people")
    aws.client("s3").put_object(Bucket="people", Key="v/000001.jpg", Body=jpeg(pair))
    h, w = pair.shape[:2]
    details = [{"BoundingBox": {"Left": 180 / w, "Top": 65 / h, "Width": 85 / w, "Height": 115 / h}},
               {"BoundingBox": {"Left": (512 + 100) / w, "Top": 150 / h, "Width": 170 / w, "Height": 200 / h}}]
    rek = aws.client("rekognition")
    sent: list[bytes] = []
    rek.meta.events.register("before-parameter-build.rekognition.SearchFacesByImage",
                             lambda params, **_: sent.append(params["Image"]["Bytes"]))
    face = {"FaceId": "11111111-2222-3333-4444-555555555555", "ExternalImageId": matching.encode_name("Zoë Ada"),
            "BoundingBox": {"Width": 0.2, "Height": 0.2, "Left": 0.1, "Top": 0.1}, "Confidence": 99.9,
            "ImageId": "66666666-7777-8888-9999-000000000000"}
    search_params = {"CollectionId": "known", "Image": {"Bytes": ANY}, "FaceMatchThreshold": 92.5, "MaxFaces": 1}
    with Stubber(rek) as stub:
        stub.add_response("describe_collection", {"FaceCount": 3}, {"CollectionId": "known"})
        stub.add_response("search_faces_by_image", {"FaceMatches": [{"Similarity": 99.1, "Face": face}]},
                          search_params)
        stub.add_client_error("search_faces_by_image", "InvalidParameterException",
                              "There are no faces in the image. Should be at least 1.", expected_params=search_params)
        result = known_faces.match_faces("people", "v/000001.jpg", details,
                                      matching.MatchSettings(collection="known", threshold=92.5))
        stub.assert_no_pending_responses()
    assert result.searched and [(m.name, m.similarity) if m else None for m in result.matches] == [
        ("Zoë Ada", 99.1), None]
    assert [Image.open(io.BytesIO(b)).size for b in sent] == [(230, 230), (400, 400)]  # each face's own crop
    with Stubber(rek) as stub:  # an empty collection: nobody to find, no search paid for
        stub.add_response("describe_collection", {"FaceCount": 0}, {"CollectionId": "known"})
        empty = known_faces.match_faces("people", "v/000001.jpg", details,
                                     matching.MatchSettings(collection="known", threshold=90))
    assert empty.searched and empty.matches == [None, None]
    unset = known_faces.match_faces("people", "v/000001.jpg", details, matching.MatchSettings(None, 90))
    assert not unset.searched and unset.matches == [None, None]
    aws.reset_clients()


def test_match_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidsift.core.errors import ConfigError

    monkeypatch.delenv("FACE_MATCH_THRESHOLD", raising=False)
    monkeypatch.setenv("FACE_COLLECTION", "")
    assert matching.MatchSettings.from_mapping(os.environ) == matching.MatchSettings(None, 90.0)
    monkeypatch.setenv("FACE_COLLECTION", "c")
    monkeypatch.setenv("FACE_MATCH_THRESHOLD", "95.5")
    assert matching.MatchSettings.from_mapping(os.environ) == matching.MatchSettings("c", 95.5)
    for bad in ("high", "120"):
        monkeypatch.setenv("FACE_MATCH_THRESHOLD", bad)
        with pytest.raises(ConfigError):
            matching.MatchSettings.from_mapping(os.environ)


# --- the same person in genuinely different photos ----------------------------------------------

HUMAN_ASSETS = Path(__file__).resolve().parents[1] / "vidsift/local/human/node_modules/@vladmandic/human/assets"


def thumbnails_of_one_man(client: Any) -> list[bytes]:
    """The first row of Human's face-match screenshot (in its npm package): one man in 18 photos
    taken on different occasions. Each face is cut out with the box DetectFaces gives it."""
    shot = HUMAN_ASSETS / "screenshot-facematch.jpg"
    if not shot.is_file():
        pytest.fail(f"{shot} is missing: make node installs @vladmandic/human with its assets")
    row = np.asarray(Image.open(shot).convert("RGB"))[283:395]
    h, w = row.shape[:2]
    faces = client.detect_faces(Image={"Bytes": jpeg(row, 95)})["FaceDetails"]
    crops = []
    for f in sorted(faces, key=lambda f: f["BoundingBox"]["Left"]):
        b = f["BoundingBox"]
        x0, y0 = max(0, int((b["Left"] - b["Width"] * 0.4) * w)), max(0, int((b["Top"] - b["Height"] * 0.4) * h))
        x1, y1 = int((b["Left"] + b["Width"] * 1.4) * w), int((b["Top"] + b["Height"] * 1.4) * h)
        crop = Image.fromarray(np.ascontiguousarray(row[y0:y1, x0:x1])).resize((224, 224 * (y1 - y0) // (x1 - x0)))
        crops.append(jpeg(np.asarray(crop), 95))
    return crops


def test_the_same_man_in_other_photos_matches_when_several_are_indexed(client: Any, collection: str) -> None:
    """What the README advises: index several photos of a person. Held out in turn, a photo of
    the man is found among his other photos; photos of other people are not taken for him."""
    photos = thumbnails_of_one_man(client)
    assert len(photos) >= 15, f"only {len(photos)} of the 18 thumbnails have a face"
    client.create_collection(CollectionId="one-man")
    try:
        # Every photo indexed once; each held-out photo's face is taken out of the collection
        # for its turn (the same collection as indexing all the others, at a third of the calls).
        face_ids = [index(client, "one-man", "The Man", image)["FaceRecords"][0]["Face"]["FaceId"]
                    for image in photos]
        for held_out in (0, len(photos) // 2, len(photos) - 1):
            assert client.delete_faces(CollectionId="one-man", FaceIds=[face_ids[held_out]])["DeletedFaces"] == [
                face_ids[held_out]]
            found = search(client, "one-man", photos[held_out])
            assert found and matching.decode_name(found[0]["Face"]["ExternalImageId"]) == "The Man", held_out
            assert face_ids[held_out] not in {m["Face"]["FaceId"] for m in found}
            for other in ("astronaut", "grace_hopper", "camera"):
                assert search(client, "one-man", jpeg(photo(other))) == [], other
            face_ids[held_out] = index(client, "one-man", "The Man", photos[held_out])["FaceRecords"][0]["Face"][
                "FaceId"]
    finally:
        client.delete_collection(CollectionId="one-man")
