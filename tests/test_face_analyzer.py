"""The local face analyser on photos that ship inside installed packages.

Expected faces are hand-annotated from the photos (boxes, who smiles, whose mouth is open),
not copied from the analyser's output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import matplotlib.cbook
import numpy as np
import pytest
from skimage import data

from vidsift.local import face_analyzer as fa

# Hand-annotated face regions (x0, y0, x1, y1) in pixels: forehead to chin, ear to ear.
FACE_TRUTH = {
    "astronaut": (180, 65, 265, 180),
    "grace_hopper": (165, 115, 360, 340),
    "camera": (195, 100, 255, 195),
}
REKOGNITION_EMOTIONS = {"HAPPY", "SAD", "ANGRY", "CONFUSED", "DISGUSTED", "SURPRISED", "CALM", "UNKNOWN", "FEAR"}
LANDMARK_TYPES = {
    "eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight", "leftEyeBrowLeft", "leftEyeBrowRight",
    "leftEyeBrowUp", "rightEyeBrowLeft", "rightEyeBrowRight", "rightEyeBrowUp", "leftEyeLeft", "leftEyeRight",
    "leftEyeUp", "leftEyeDown", "rightEyeLeft", "rightEyeRight", "rightEyeUp", "rightEyeDown", "noseLeft",
    "noseRight", "mouthUp", "mouthDown", "leftPupil", "rightPupil", "upperJawlineLeft", "midJawlineLeft",
    "chinBottom", "midJawlineRight", "upperJawlineRight",
}
ATTRIBUTE_KEYS = {"AgeRange", "Gender", "Emotions", "Smile", "EyesOpen", "MouthOpen"}


def photo(name: str) -> np.ndarray:
    """A bundled photo as the BGR array the analyser takes."""
    if name == "grace_hopper":
        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert image is not None
        return image
    rgb = getattr(data, name)()
    if rgb.ndim == 2:
        return cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def lfw_tile(face: np.ndarray) -> np.ndarray:
    """An lfw_subset 25x25 crop made detectable: x4 upscaled, on a gray margin half its size.

    The crops are cut at the brows and chin; a detector needs the whole head shape.
    """
    gray = cv2.resize((face * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
    gray = cv2.copyMakeBorder(gray, 50, 50, 50, 50, cv2.BORDER_CONSTANT, value=128)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def to_pixels(face: dict, image: np.ndarray) -> tuple[float, float, float, float]:
    h, w = image.shape[:2]
    box = face["BoundingBox"]
    return box["Left"] * w, box["Top"] * h, (box["Left"] + box["Width"]) * w, (box["Top"] + box["Height"]) * h


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def landmark(face: dict, kind: str) -> tuple[float, float]:
    found = [lm for lm in face["Landmarks"] if lm["Type"] == kind]
    assert len(found) == 1, kind
    return found[0]["X"], found[0]["Y"]


@pytest.fixture(scope="module")
def analyzer() -> Iterator[fa.FaceAnalyzer]:
    """One analyser (models loaded once) for the module, with a scratch HOME."""
    with pytest.MonkeyPatch.context() as mp:
        import tempfile

        mp.setenv("HOME", tempfile.mkdtemp(prefix="vidsift-faces-home-"))
        an = fa.FaceAnalyzer(attributes=True)
        # No silent skip: without the Node models the attribute tests must fail, loudly.
        assert an.has_attributes, f"face attribute models unavailable: {an.attributes_error}"
        yield an
        an.close()


@pytest.fixture(scope="module")
def detector_only() -> fa.FaceAnalyzer:
    return fa.FaceAnalyzer(attributes=False)


@pytest.mark.parametrize("name", sorted(FACE_TRUTH))
def test_finds_the_one_face_where_it_is(detector_only: fa.FaceAnalyzer, name: str) -> None:
    image = photo(name)
    faces = detector_only.analyze(image)
    assert len(faces) == 1
    face = faces[0]
    assert iou(to_pixels(face, image), FACE_TRUTH[name]) >= 0.5
    assert 50 < face["Confidence"] <= 100
    # The 5 landmarks are inside the box and in anatomical order.
    box = face["BoundingBox"]
    for lm in face["Landmarks"]:
        assert box["Left"] <= lm["X"] <= box["Left"] + box["Width"]
        assert box["Top"] <= lm["Y"] <= box["Top"] + box["Height"]
    (elx, ely), (erx, ery) = landmark(face, "eyeLeft"), landmark(face, "eyeRight")
    _, ny = landmark(face, "nose")
    (_, mly), (_, mry) = landmark(face, "mouthLeft"), landmark(face, "mouthRight")
    assert elx < erx
    assert max(ely, ery) < ny < min(mly, mry)


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_no_face_on_photos_without_people(analyzer: fa.FaceAnalyzer, name: str) -> None:
    assert analyzer.analyze(photo(name), attributes_all=True) == []


def test_lfw_faces_found_and_non_faces_not() -> None:
    """skimage's lfw_subset: 100 face crops then 100 non-face crops (25x25 gray)."""
    tiles = data.lfw_subset()
    assert tiles.shape == (200, 25, 25)
    an = fa.FaceAnalyzer(attributes=False)
    found = [len(an.analyze(lfw_tile(t))) for t in tiles]
    assert sum(n == 1 for n in found[:100]) >= 97
    assert sum(n > 0 for n in found[100:]) <= 2


def test_detection_only_reports_no_attribute(detector_only: fa.FaceAnalyzer) -> None:
    faces = detector_only.analyze(photo("astronaut"), attributes_all=True)
    assert len(faces) == 1
    # No mesh, no pose: yuface's 5 points do not follow a tilted head, so none is made up.
    assert set(faces[0]) == {"BoundingBox", "Landmarks", "Quality", "Confidence"}
    assert len(faces[0]["Landmarks"]) == 5
    assert detector_only.analyzer_id == fa.DETECTOR_ID
    assert fa.DETECTOR_ID.startswith("yuface-")


def test_all_attributes_on_the_astronaut(analyzer: fa.FaceAnalyzer) -> None:
    (face,) = analyzer.analyze(photo("astronaut"), attributes_all=True)
    assert set(face) >= ATTRIBUTE_KEYS
    # Never invented: no model here estimates these.
    assert not {"Beard", "Mustache", "Eyeglasses", "Sunglasses", "EyeDirection", "FaceOccluded"} & set(face)
    # Eileen Collins, about 42 in this photo, smiling broadly, mouth open, eyes open.
    age = face["AgeRange"]
    assert 0 <= age["Low"] <= age["High"] <= 99
    assert age["Low"] <= 50 and age["High"] >= 30
    assert face["Gender"]["Value"] == "Female"
    assert 50 <= face["Gender"]["Confidence"] <= 100
    emotions = face["Emotions"]
    assert {e["Type"] for e in emotions} <= REKOGNITION_EMOTIONS - {"CONFUSED", "UNKNOWN"}
    assert [e["Confidence"] for e in emotions] == sorted((e["Confidence"] for e in emotions), reverse=True)
    assert emotions[0]["Type"] == "HAPPY"
    assert sum(e["Confidence"] for e in emotions) == pytest.approx(100, abs=0.1)  # a whole softmax
    assert face["Smile"]["Value"] is True
    assert face["EyesOpen"]["Value"] is True
    assert face["MouthOpen"]["Value"] is True
    for key in ("Smile", "EyesOpen", "MouthOpen"):
        assert 50 <= face[key]["Confidence"] <= 100


def test_attributes_on_grace_hopper(analyzer: fa.FaceAnalyzer) -> None:
    (face,) = analyzer.analyze(photo("grace_hopper"), attributes_all=True)
    # About 77 when photographed: an old face, mouth closed, not laughing.
    assert face["AgeRange"]["High"] >= 55
    assert face["MouthOpen"]["Value"] is False
    assert face["Emotions"][0]["Type"] != "HAPPY"
    assert face["Smile"]["Value"] is False


def test_mesh_landmarks_agree_with_the_detector(analyzer: fa.FaceAnalyzer) -> None:
    """Two independent models (yuface's 5 points, Human's mesh + iris) must land together."""
    image = photo("grace_hopper")
    (face,) = analyzer.analyze(image, attributes_all=True)
    types = [lm["Type"] for lm in face["Landmarks"]]
    assert len(types) == len(set(types)) == 30
    assert set(types) == LANDMARK_TYPES
    h, w = image.shape[:2]
    eye_span = (landmark(face, "eyeRight")[0] - landmark(face, "eyeLeft")[0]) * w
    for eye, pupil in (("eyeLeft", "leftPupil"), ("eyeRight", "rightPupil")):
        (ex, ey), (px, py) = landmark(face, eye), landmark(face, pupil)
        assert math.hypot((ex - px) * w, (ey - py) * h) < 0.2 * eye_span
    assert landmark(face, "chinBottom")[1] > landmark(face, "mouthDown")[1] > landmark(face, "mouthUp")[1]


@pytest.mark.parametrize("attributes_all", [False, True], ids=["default", "all"])
def test_pose_and_fine_landmarks_in_both_modes(analyzer: fa.FaceAnalyzer, attributes_all: bool) -> None:
    """Rekognition returns Pose and landmarks by DEFAULT: the mesh runs in both modes, the same."""
    image = photo("astronaut")
    (default,) = analyzer.analyze(image, attributes_all=False)
    (full,) = analyzer.analyze(image, attributes_all=attributes_all)
    assert len(default["Landmarks"]) == 30
    assert not ATTRIBUTE_KEYS & set(default)
    for axis in ("Roll", "Yaw", "Pitch"):
        assert full["Pose"][axis] == pytest.approx(default["Pose"][axis], abs=1.0)
        assert abs(default["Pose"][axis]) < 20  # a near-frontal portrait


def test_pose_sees_a_turned_head(analyzer: fa.FaceAnalyzer) -> None:
    """The cameraman looks to the image's right, into his camera: a strong negative yaw."""
    (face,) = analyzer.analyze(photo("camera"))
    assert face["Pose"]["Yaw"] < -20


def test_a_face_only_the_detector_sees_keeps_no_guessed_fields(analyzer: fa.FaceAnalyzer) -> None:
    """Mirrored, the cameraman's near-profile face is found by yuface but not by Human's
    detector: it is reported (box, landmarks, quality) with no pose and no attribute."""
    (face,) = analyzer.analyze(cv2.flip(photo("camera"), 1), attributes_all=True)
    assert set(face) == {"BoundingBox", "Landmarks", "Quality", "Confidence"}


@pytest.mark.parametrize("attributes_all", [False, True], ids=["default", "all"])
def test_roll_follows_a_rotated_photo(analyzer: fa.FaceAnalyzer, attributes_all: bool) -> None:
    """Turning the photo 15 degrees counter-clockwise turns the head's roll by -15 degrees."""
    image = photo("astronaut")
    h, w = image.shape[:2]
    (cx, cy) = (222, 120)  # the face's centre, so it stays in the frame
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((cx, cy), 15, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT)
    (before,) = analyzer.analyze(image, attributes_all)
    (after,) = analyzer.analyze(turned, attributes_all)
    assert after["Pose"]["Roll"] - before["Pose"]["Roll"] == pytest.approx(-15, abs=4)


def test_quality_measures_the_face(detector_only: fa.FaceAnalyzer) -> None:
    image = photo("grace_hopper")
    (sharp,) = detector_only.analyze(image)
    (blurred,) = detector_only.analyze(cv2.GaussianBlur(image, (0, 0), 2))
    (dark,) = detector_only.analyze((image * 0.5).astype(np.uint8))
    for face in (sharp, blurred, dark):
        assert 0 <= face["Quality"]["Brightness"] <= 100
        assert 0 <= face["Quality"]["Sharpness"] <= 100
    assert blurred["Quality"]["Sharpness"] < sharp["Quality"]["Sharpness"] - 20
    assert dark["Quality"]["Brightness"] == pytest.approx(sharp["Quality"]["Brightness"] / 2, rel=0.15)


def test_accepts_gray_and_alpha_images(detector_only: fa.FaceAnalyzer) -> None:
    bgr = photo("astronaut")
    assert len(detector_only.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))) == 1
    assert len(detector_only.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))) == 1
    assert detector_only.analyze(np.zeros((120, 160, 3), np.uint8)) == []


def test_big_frames_are_scaled_for_detection(detector_only: fa.FaceAnalyzer) -> None:
    """A 2048-px frame is detected at 960 px and the box mapped back to the full frame."""
    image = photo("astronaut")
    big = cv2.resize(image, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    (small_face,) = detector_only.analyze(image)
    (big_face,) = detector_only.analyze(big)
    for key in ("Left", "Top", "Width", "Height"):
        assert big_face["BoundingBox"][key] == pytest.approx(small_face["BoundingBox"][key], abs=0.02)


def test_attribute_process_is_restarted_after_a_crash(analyzer: fa.FaceAnalyzer) -> None:
    sidecar = analyzer._sidecar
    assert sidecar is not None and sidecar.alive
    sidecar._proc.kill()
    sidecar._proc.wait(timeout=10)
    (face,) = analyzer.analyze(photo("astronaut"), attributes_all=True)
    assert "AgeRange" in face
    assert analyzer._sidecar is not sidecar and analyzer._sidecar is not None and analyzer._sidecar.alive


def test_analyzer_id_names_both_models(analyzer: fa.FaceAnalyzer) -> None:
    assert analyzer.analyzer_id == fa.ANALYZER_ID
    assert fa.ANALYZER_ID.startswith(fa.DETECTOR_ID + "+human-3.")


def test_module_level_analyze_uses_one_shared_analyzer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDSIFT_FACE_ATTRIBUTES", "0")
    monkeypatch.setattr(fa, "_default", None)
    faces = fa.analyze(photo("astronaut"), attributes_all=False)
    assert len(faces) == 1
    assert fa.default_analyzer() is fa.default_analyzer()
    fa.default_analyzer().close()


def test_models_loading_in_the_background_answer_the_first_request(tmp_path) -> None:
    """A local stack starts its face analyser with the Node models still loading: the first
    analysis waits for them and gets the attributes."""
    analyzer = fa.FaceAnalyzer(background=True)
    try:
        (face,) = analyzer.analyze(photo("astronaut"), attributes_all=True)
        assert "AgeRange" in face and analyzer.has_attributes
        assert analyzer.analyzer_id == fa.ANALYZER_ID
    finally:
        analyzer.close()


def test_models_that_fail_to_load_in_the_background_leave_detection_working(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A sidecar that dies while loading (here: a script that exits at once) is found out on
    first use: the analyser says why and reports detection only, as when Node is missing."""
    broken = tmp_path / "sidecar.mjs"
    broken.write_text("process.stderr.write('no models here\\n'); process.exit(3);\n")
    monkeypatch.setattr(fa, "SIDECAR", broken)
    analyzer = fa.FaceAnalyzer(background=True)
    try:
        (face,) = analyzer.analyze(photo("astronaut"), attributes_all=True)
        assert "AgeRange" not in face and "BoundingBox" in face
        assert not analyzer.has_attributes
        assert "exited (3)" in (analyzer.attributes_error or "")
        assert analyzer.analyzer_id == fa.DETECTOR_ID
    finally:
        analyzer.close()
