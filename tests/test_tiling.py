"""Slicing-aided detection (``TiledDetector`` in sagemaker/code/inference.py).

The real SSDLite runs on frames made from a bundled photo (matplotlib's grace_hopper) pasted
small into a large flat frame: too small for the whole-frame pass at the model's 300x300
input, big enough for a tile. The merge is checked with a person on the tiles' seam. The YOLO
side of the wrapper (letterboxed input, the cloud's model) is checked with a recording
stand-in backend: what is tested there is which frames get tiles and how boxes come back,
not YOLO's accuracy (``make test-yolo`` runs the real one).
"""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest

from tests.test_inference import load_inference
from vidsift.testing.samples import photo

FRAME = (960, 1280)  # height, width


@pytest.fixture(scope="module")
def inf() -> ModuleType:
    return load_inference()


@pytest.fixture(scope="module")
def ssdlite(inf: ModuleType) -> Any:
    """The bare backend; each test wraps it in the tiling it needs."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PERSON_TILING", "off")
        return inf.load_model(None, backend="ssdlite")


def frame_with_person(height_px: int, left: int = 300, top: int = 300) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A flat grey 1280x960 frame with the grace_hopper portrait ``height_px`` tall at (left, top);
    also the pasted photo's box (x1, y1, x2, y2)."""
    img = cv2.cvtColor(photo("grace_hopper"), cv2.COLOR_RGB2BGR)
    scale = height_px / img.shape[0]
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((*FRAME, 3), 110, np.uint8)
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas, (left, top, left + small.shape[1], top + small.shape[0])


def detect(inf: ModuleType, model: Any, frames: list[np.ndarray]) -> list[list[dict[str, float]]]:
    """Through the whole handler, as JPEGs in one request."""
    body = {"instances": [{"image_b64": base64.b64encode(cv2.imencode(".jpg", f)[1].tobytes()).decode()}
                          for f in frames]}
    raw, _ = inf.handle(model, json.dumps(body).encode(), "application/json")
    return [p["boxes"] for p in json.loads(raw)["predictions"]]


def inside(box: dict[str, float], rect: tuple[int, int, int, int]) -> bool:
    cx = (box["left"] + box["width"] / 2) * FRAME[1]
    cy = (box["top"] + box["height"] / 2) * FRAME[0]
    return rect[0] <= cx <= rect[2] and rect[1] <= cy <= rect[3]


def with_tiling(inf: ModuleType, ssdlite: Any, mode: str) -> Any:
    return inf.PersonDetector(inf.TiledDetector(ssdlite.backend, inf.SSDLITE_INPUT, stretch=True, mode=mode),
                              ssdlite.s3)


def test_tiles_find_a_small_person_the_whole_frame_misses(inf: ModuleType, ssdlite: Any) -> None:
    small, rect = frame_with_person(110)
    assert detect(inf, ssdlite, [small]) == [[]]  # 110 of 960 px: 34 px at the 300 px input
    [boxes] = detect(inf, with_tiling(inf, ssdlite, "always"), [small])
    assert len(boxes) == 1 and inside(boxes[0], rect) and boxes[0]["confidence"] >= 0.5


def test_auto_tiles_the_frames_of_a_request_where_someone_small_was_seen(inf: ModuleType, ssdlite: Any) -> None:
    seen, _ = frame_with_person(150, left=800)  # found by the whole frame, and small: tiles
    missed, rect = frame_with_person(110)       # nobody found by the whole frame
    near = cv2.resize(cv2.cvtColor(photo("grace_hopper"), cv2.COLOR_RGB2BGR), (900, 700))  # big: no tiles
    auto = with_tiling(inf, ssdlite, "auto")
    assert detect(inf, auto, [missed]) == [[]]  # alone, nothing says the camera's people are small
    assert not any(auto.backend.last_tiled)
    found = detect(inf, auto, [seen, missed, near])
    assert auto.backend.last_tiled == [True, True, False]
    assert len(found[0]) == 1 and len(found[2]) == 1
    assert len(found[1]) == 1 and inside(found[1][0], rect)


@pytest.mark.parametrize("left", [590, 700])
def test_a_person_on_the_seam_is_counted_once(inf: ModuleType, ssdlite: Any, left: int) -> None:
    """Columns of the 2x2 grid on 1280 px: [0, 753) and [527, 1280). At 590 the person lies
    whole in both tiles (and the whole frame finds them too); at 700 the left tile cuts them."""
    assert [t[0] for t in inf.tiles_for(FRAME[1], FRAME[0], 2.0)][:2] == [0, 527]
    seam, rect = frame_with_person(200, left=left)
    assert rect[0] < 753 < rect[2] or 527 < rect[0] < rect[2] < 753
    model = with_tiling(inf, ssdlite, "always")
    [boxes] = detect(inf, model, [seam])
    assert len(boxes) == 1 and inside(boxes[0], rect)


def test_tile_grid_overlaps_and_covers(inf: ModuleType) -> None:
    tiles = inf.tile_grid(768, 576, 2, 2)
    assert len(tiles) == 4
    assert {t[0] for t in tiles} == {0, 316} and {t[2] for t in tiles} == {452, 768}
    assert {t[1] for t in tiles} == {0, 237} and {t[3] for t in tiles} == {339, 576}
    assert inf.tiles_for(1280, 720, 1.0) == []
    assert len(inf.tiles_for(1280, 720, 3.0)) == 6  # 3 x 2


def test_boxes_cut_by_an_inner_border_are_dropped_and_put_back_in_the_frame(inf: ModuleType) -> None:
    rows = np.array([[0.5, 0.2, 1.0, 0.8, 0.9],     # touches the tile's right edge, inside the frame: cut
                     [0.0, 0.1, 0.2, 0.6, 0.8],     # touches the left edge, which is the frame's own
                     [0.3, 0.3, 0.5, 0.9, 0.7]])
    out = inf.tile_rows_to_image(rows, (0, 0, 400, 300), 800, 600)
    np.testing.assert_allclose(out, [[0.0, 0.05, 0.1, 0.3, 0.8], [0.15, 0.15, 0.25, 0.45, 0.7]])


def test_merge_keeps_neighbours_and_joins_one_person_seen_twice(inf: ModuleType) -> None:
    side_by_side = np.array([[0.10, 0.1, 0.20, 0.5, 0.9], [0.17, 0.1, 0.27, 0.5, 0.8]])  # IoU 0.18
    assert len(inf.nms_merge(side_by_side)) == 2
    whole_and_tile = np.array([[0.10, 0.1, 0.20, 0.5, 0.6], [0.11, 0.12, 0.2, 0.47, 0.9]])
    merged = inf.nms_merge(whole_and_tile)
    assert len(merged) == 1 and merged[0, 4] == 0.9  # the more confident one stays
    assert inf.nms_merge(np.zeros((0, 5))).shape == (0, 5)


class Recorder:
    """A backend that records the image sizes it is shown and answers fixed rows for the frame."""

    model_id = "recorder"

    def __init__(self, rows: np.ndarray) -> None:
        self.rows, self.seen = rows, []

    def fits(self, width: int, height: int) -> bool:
        return max(width, height) >= 640

    def detect(self, images: list[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        self.seen += [im.shape[:2] for im in images]
        return [self.rows if len(self.seen) == 1 else np.zeros((0, 5)) for _ in images]


@pytest.mark.parametrize(("height", "tiles"), [(0.05, 4), (0.5, 0)])
def test_letterboxed_models_tile_by_their_own_input_size(inf: ModuleType, height: float, tiles: int) -> None:
    """YOLO letterboxes the long side to imgsz (640): on a 768x576 frame a person 5% of its height
    is 24 px at the input (tiles), half its height 240 px (none)."""
    backend = Recorder(np.array([[0.4, 0.2, 0.45, 0.2 + height, 0.8]]))
    tiled = inf.TiledDetector(backend, 640, stretch=False, mode="auto")
    [rows] = tiled.detect([np.zeros((576, 768, 3), np.uint8)], 0.5)
    assert len(backend.seen) == 1 + tiles and len(rows) == 1
    assert all(h < 576 and w < 768 for h, w in backend.seen[1:])


def test_yolo_is_wrapped_with_its_letterbox_size(inf: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    yolo = inf.YoloDetector.__new__(inf.YoloDetector)  # no ultralytics here: only the wrapping is checked
    yolo.imgsz, yolo.model_id = 640, "yolo11n"
    monkeypatch.delenv("PERSON_TILING", raising=False)
    wrapped = inf.tiled(yolo)
    assert isinstance(wrapped, inf.TiledDetector) and wrapped.input_side == 640 and not wrapped.stretch
    assert wrapped.mode == "auto" and wrapped.model_id == "yolo11n"
    monkeypatch.setenv("PERSON_TILING", "off")
    assert inf.tiled(yolo) is yolo
    monkeypatch.setenv("PERSON_TILING", "sometimes")
    with pytest.raises(ValueError, match="PERSON_TILING must be one of off, auto, always"):
        inf.tiled(yolo)
