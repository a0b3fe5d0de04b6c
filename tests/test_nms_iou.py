"""SSDLite's non-maximum suppression IoU as a setting (SSDLITE_NMS_IOU): where each runtime
suppresses, that the setting reaches it, and that cached detections of one value are never read
as another's (docs/person-detection.md, *Non-maximum suppression*)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is beside vidsift/, not installed

from test_inference import load_inference, make_pbtxt, photo


@pytest.fixture(scope="module")
def inf() -> ModuleType:
    return load_inference()


@pytest.fixture(scope="module")
def graph(inf: ModuleType) -> Path:
    return inf.find_ssdlite_files(None)[0]


def test_the_default_is_the_graphs_own_value(inf: ModuleType, graph: Path) -> None:
    """0.6 in the frozen graph (OpenVINO's suppression), in the text graph (OpenCV's) and as the
    endpoint's default: one value, so the default changes no box."""
    import openvino as ov

    make = make_pbtxt()
    assert make.SSDConfig().nms_iou == inf.DEFAULT_NMS_IOU
    assert inf.openvino_nms_ious(ov.Core().read_model(str(graph))) == pytest.approx([inf.DEFAULT_NMS_IOU])


def test_the_text_graph_carries_the_setting(inf: ModuleType, graph: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    make = make_pbtxt()
    assert inf.pbtxt_nms_iou(make.generate(graph)) == pytest.approx(0.6)
    assert inf.pbtxt_nms_iou(make.generate(graph, cfg=make.SSDConfig(nms_iou=0.75))) == pytest.approx(0.75)
    monkeypatch.setenv("VIDSIFT_CACHE_DIR", str(tmp_path))
    default, other = make.cached(graph), make.cached(graph, nms_iou=0.75)
    assert default != other  # two cached files: one value never read as the other
    assert inf.pbtxt_nms_iou(other.read_text()) == pytest.approx(0.75)
    assert make.cached(graph, nms_iou=0.6) == default
    with pytest.raises(ValueError, match="nms_threshold"):
        inf.pbtxt_nms_iou("node { }")


def test_openvino_suppression_is_set_inside_the_loop(inf: ModuleType, graph: Path) -> None:
    """OpenVINO converts TF's own suppression (inside a Loop body, which it hands out as a copy):
    the setting must land there, or it would change nothing."""
    import openvino as ov

    model = ov.Core().read_model(str(graph))
    assert inf.set_openvino_nms_iou(model, 0.8) == 1
    assert inf.openvino_nms_ious(model) == pytest.approx([0.8])
    param = ov.op.Parameter(ov.Type.f32, ov.Shape([1]))
    plain = ov.Model([ov.op.Result(param.output(0))], [param])
    with pytest.raises(ValueError, match="no NonMaxSuppression"):
        inf.set_openvino_nms_iou(plain, 0.8)


def _boxes(detector: Any, image: np.ndarray) -> list[tuple[float, ...]]:
    rows = detector.detect([image], 0.05)[0]
    return sorted(tuple(round(float(v), 3) for v in r) for r in rows if r[4] >= 0.05)


@pytest.mark.parametrize("runtime", ["openvino", "opencv"])
def test_a_higher_iou_keeps_overlapping_boxes_on_both_runtimes(inf: ModuleType, runtime: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """On the astronaut photo the model's weak boxes overlap the person's: at IoU 0.8 boxes that
    0.6 suppresses survive, on either runtime, and the person's own box is unchanged."""
    monkeypatch.setenv("SSDLITE_RUNTIME", runtime)
    monkeypatch.setenv("PERSON_TILING", "off")
    image = photo("astronaut")
    found = {}
    for iou in (0.6, 0.8):
        monkeypatch.setenv("SSDLITE_NMS_IOU", str(iou))
        model = inf.load_model(None, backend="ssdlite")
        assert model.backend.runtime == runtime and model.backend.nms_iou == pytest.approx(iou)
        found[iou] = _boxes(model.backend, image)
    assert len(found[0.8]) > len(found[0.6]) >= 1
    assert max(found[0.6], key=lambda r: r[4]) == max(found[0.8], key=lambda r: r[4])


def test_the_setting_is_checked(inf: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("0", "1.5", "-0.2"):
        monkeypatch.setenv("SSDLITE_NMS_IOU", bad)
        with pytest.raises(ValueError, match="SSDLITE_NMS_IOU must be in"):
            inf.nms_iou_setting()
    monkeypatch.delenv("SSDLITE_NMS_IOU")
    assert inf.nms_iou_setting() == inf.DEFAULT_NMS_IOU


def test_the_tiles_merge_keeps_its_margin_below_the_suppression(inf: ModuleType) -> None:
    """Two people the model keeps apart at IoU 0.8 are not merged back into one by the tiles'
    merge; at the default the merge is as before (MERGE_IOU)."""

    class Backend:
        model_id = "fake"

        def __init__(self, nms_iou: float) -> None:
            self.nms_iou = nms_iou

    assert inf.TiledDetector(Backend(0.6), 300, stretch=True).merge_iou == pytest.approx(inf.MERGE_IOU)
    assert inf.TiledDetector(Backend(0.8), 300, stretch=True).merge_iou == pytest.approx(inf.MERGE_IOU + 0.2)
    pair = np.array([[0.0, 0.0, 0.4, 1.0, 0.9], [0.1, 0.0, 0.5, 1.0, 0.8]])  # IoU 0.6
    assert len(inf.nms_merge(pair, inf.TiledDetector(Backend(0.8), 300, stretch=True).merge_iou)) == 2
    assert len(inf.nms_merge(pair)) == 1


def test_the_bench_cache_key_names_the_iou(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench_tracking's cached detections are keyed by the detector; another IoU is another key,
    and the model's own 0.6 keeps the key the detections cached before the setting have."""
    from bench.bench_tracking import detector_key

    class Backend:
        model_id = "ssdlite_mobilenet_v2_person"
        mode, zoom = "auto", 2.0

        def __init__(self, nms_iou: float) -> None:
            self.nms_iou = nms_iou

    assert detector_key(Backend(0.6), 1) == "ssdlite_mobilenet_v2_person tiling=auto zoom=2"
    assert detector_key(Backend(0.7), 1) == "ssdlite_mobilenet_v2_person tiling=auto zoom=2 nms_iou=0.7"
    assert detector_key(Backend(0.8), 2) != detector_key(Backend(0.7), 2)


def test_detector_bands_count_duplicates_and_bands() -> None:
    """bench.detector_bands: a second box on a found person is a duplicate, a box on nobody a
    false positive, and each true person counts in the band of their share in view."""
    from types import SimpleNamespace as NS

    from bench.detector_bands import frame_counts

    gt = [NS(box=(0.1, 0.1, 0.2, 0.5), visible=1.0), NS(box=(0.25, 0.1, 0.2, 0.5), visible=0.5)]
    box = lambda x, c: NS(left=x, top=0.1, width=0.2, height=0.5, confidence=c)  # noqa: E731
    out = frame_counts(gt, [box(0.1, 0.9), box(0.11, 0.6), box(0.7, 0.8)])
    assert (out["boxes"], out["matched"], out["duplicates"]) == (3, 1, 1)
    assert (out["wholly in view true"], out["wholly in view found"]) == (1, 1)
    assert (out["35-60% in view true"], out["35-60% in view found"]) == (1, 0)
    assert frame_counts(gt, [box(0.1, 0.9), box(0.25, 0.6)])["35-60% in view found"] == 1
