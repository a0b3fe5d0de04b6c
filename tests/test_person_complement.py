"""SSDLite with CenterNet's second opinion (inference.ComplementDetector, PERSON_COMPLEMENT).

Which CenterNet boxes are added (inference.complement_rows) is checked on arrays; the detector
around it with stand-in backends (which frames CenterNet sees, its id); and once for real on a
photo, which needs CenterNet's files (``make node`` installs them under vidsift/local/human).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from test_inference import load_deploy, load_inference, photo


@pytest.fixture(scope="module")
def inf() -> ModuleType:
    return load_inference()


def rows(*boxes: tuple[float, float, float, float, float]) -> np.ndarray:
    return np.array(boxes, dtype=np.float64).reshape(-1, 5)


def test_added_only_where_no_confident_box(inf: ModuleType) -> None:
    first = rows((0.10, 0.10, 0.30, 0.60, 0.90),   # a confident SSDLite person
                 (0.60, 0.10, 0.80, 0.60, 0.40))   # a low one (only continues tracks)
    second = rows((0.11, 0.12, 0.31, 0.62, 0.70),  # the confident person again (IoU ~0.85): not added
                  (0.40, 0.20, 0.50, 0.50, 0.46),  # nobody there: added
                  (0.61, 0.11, 0.81, 0.61, 0.55),  # the low person, surer: added, the low box dropped
                  (0.85, 0.20, 0.95, 0.50, 0.39),  # under the threshold: not added
                  (0.20, 0.10, 0.40, 0.60, 0.80))  # half over the confident one (IoU 1/3): added
    out = inf.complement_rows(first, second, threshold=0.4, confident=0.5, score="own")
    assert out[:, :4].round(2).tolist() == [[0.10, 0.10, 0.30, 0.60], [0.40, 0.20, 0.50, 0.50],
                                            [0.61, 0.11, 0.81, 0.61], [0.20, 0.10, 0.40, 0.60]]
    assert out[:, 4].tolist() == [0.90, 0.46, 0.55, 0.80]  # own: CenterNet's scores as they are


def test_mapped_scores_put_the_threshold_at_the_confident_level(inf: ModuleType) -> None:
    second = rows((0.0, 0.0, 0.1, 0.3, 0.4), (0.2, 0.0, 0.3, 0.3, 0.7), (0.4, 0.0, 0.5, 0.3, 1.0))
    out = inf.complement_rows(rows(), second, threshold=0.4, confident=0.5, score="mapped")
    assert out[:, 4].round(6).tolist() == [0.5, 0.75, 1.0]
    # A low SSDLite box stays when the added box over it is not surer than it (own scores).
    low = rows((0.0, 0.0, 0.1, 0.3, 0.45))
    kept = inf.complement_rows(low, rows((0.0, 0.0, 0.1, 0.3, 0.42)), threshold=0.4, confident=0.5, score="own")
    assert kept[:, 4].tolist() == [0.45, 0.42]
    with pytest.raises(ValueError, match="PERSON_COMPLEMENT_SCORE"):
        inf.complement_rows(low, second, threshold=0.4, confident=0.5, score="sigmoid")
    # Nothing to add: the first detector's rows unchanged.
    assert inf.complement_rows(low, rows(), threshold=0.4, confident=0.5).tolist() == low.tolist()


class Fixed:
    """A backend that answers the same rows for every image and records what it was shown."""

    def __init__(self, model_id: str, answer: np.ndarray, tiled: Sequence[bool] | None = None) -> None:
        self.model_id, self.answer, self.tiled, self.seen = model_id, answer, tiled, 0
        self.mode, self.zoom = "auto", 2.0

    def fits(self, width: int, height: int) -> bool:
        return width >= 300

    def detect(self, images: Sequence[np.ndarray], min_confidence: float) -> list[np.ndarray]:
        self.seen += len(images)
        if self.tiled is not None:
            self.last_tiled = list(self.tiled)
        return [self.answer.copy() for _ in images]


def test_detector_asks_centernet_on_the_frames_it_should(inf: ModuleType) -> None:
    images = [np.zeros((480, 640, 3), np.uint8)] * 3
    first = Fixed("ssd", rows((0.1, 0.1, 0.3, 0.6, 0.9), (0.5, 0.5, 0.6, 0.9, 0.2)), tiled=[False, True, False])
    second = Fixed("cn", rows((0.6, 0.1, 0.8, 0.6, 0.6)))
    both = inf.ComplementDetector(first, second, threshold=0.4, confident=0.5)
    assert both.model_id == "ssd+cn>=0.4 low" and both.mode == "auto" and both.fits(299, 400) is False
    out = both.detect(images, 0.3)
    assert second.seen == 3 and [len(r) for r in out] == [2, 2, 2]  # the 0.2 box is under the request's 0.3
    some = inf.ComplementDetector(first, second, threshold=0.5, confident=0.5, score="own", frames="tiled")
    assert some.model_id == "ssd+cn>=0.5 own on tiled"
    out = some.detect(images, 0.3)
    assert second.seen == 4 and some.last_second == [False, True, False]
    assert [len(r) for r in out] == [1, 2, 1]
    with pytest.raises(ValueError, match="PERSON_COMPLEMENT_FRAMES"):
        inf.ComplementDetector(first, second, threshold=0.4, confident=0.5, frames="some")


def test_fewer_asks_centernet_where_ssdlite_is_sure_of_fewer_people(inf: ModuleType) -> None:
    """``fewer``: CenterNet sees the frames with fewer confident SSDLite people than the request's
    most (a miss), none in a request where every frame has as many (or in a one-frame request)."""
    two, one, none = rows((0.1, 0.1, 0.3, 0.6, 0.9), (0.5, 0.1, 0.7, 0.6, 0.6)), rows((0.1, 0.1, 0.3, 0.6, 0.9)), rows()
    low = rows((0.1, 0.1, 0.3, 0.6, 0.9), (0.5, 0.1, 0.7, 0.6, 0.45))  # the second one under 0.5
    assert inf.fewer_than_most([two, one, none, low, two], 0.5) == [False, True, True, True, False]
    assert inf.fewer_than_most([one, one], 0.5) == [False, False]
    assert inf.fewer_than_most([none], 0.5) == [False] and inf.fewer_than_most([], 0.5) == []

    class PerFrame(Fixed):
        def __init__(self, answers: list[np.ndarray]) -> None:
            super().__init__("ssd", rows())
            self.answers = answers

        def detect(self, images: Sequence[np.ndarray], min_confidence: float) -> list[np.ndarray]:
            return [a.copy() for a in self.answers]

    images = [np.zeros((480, 640, 3), np.uint8)] * 3
    second = Fixed("cn", rows((0.6, 0.1, 0.8, 0.6, 0.6)))
    both = inf.ComplementDetector(PerFrame([two, one, two]), second, threshold=0.35, confident=0.5, frames="fewer")
    assert both.model_id == "ssd+cn>=0.35 low on fewer"
    out = both.detect(images, 0.3)
    assert second.seen == 1 and both.last_second == [False, True, False]
    assert [len(r) for r in out] == [2, 2, 2]  # CenterNet's box added (low) where the second person was missed
    assert out[1][-1].tolist() == [0.6, 0.1, 0.8, 0.6, 0.499]


def test_default_without_centernet_files(inf: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """On by default; where CenterNet's files are missing (no `make node`, a model package without
    them) the default is SSDLite alone with a warning, and PERSON_COMPLEMENT=centernet an error."""
    assert (inf.DEFAULT_COMPLEMENT, inf.DEFAULT_COMPLEMENT_CONFIDENCE, inf.DEFAULT_COMPLEMENT_SCORE,
            inf.DEFAULT_COMPLEMENT_FRAMES, inf.DEFAULT_COMPLEMENT_SIZE) == ("centernet", 0.35, "low", "fewer", 384)
    plain = Fixed("ssd", rows())
    monkeypatch.setattr(inf, "HUMAN_MODELS", tmp_path)
    monkeypatch.delenv("CENTERNET_MODEL", raising=False)
    monkeypatch.delenv("PERSON_COMPLEMENT", raising=False)
    with caplog.at_level("WARNING", logger="vidsift.inference"):
        assert inf.complemented(plain) is plain
    assert "SSDLite alone" in caplog.text
    monkeypatch.setenv("PERSON_COMPLEMENT", "centernet")
    with pytest.raises(FileNotFoundError, match="make node"):
        inf.complemented(plain)


def test_setting_off_and_bad_values(inf: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = Fixed("ssd", rows())
    monkeypatch.setenv("PERSON_COMPLEMENT", "off")
    assert inf.complemented(plain) is plain
    monkeypatch.setenv("PERSON_COMPLEMENT", "nanodet")
    with pytest.raises(ValueError, match="PERSON_COMPLEMENT must be one of off, centernet"):
        inf.complemented(plain)
    monkeypatch.setenv("PERSON_COMPLEMENT", "centernet")
    for side in ("400", "0", "-32"):  # CenterNet's grids need a multiple of 32
        monkeypatch.setenv("PERSON_COMPLEMENT_SIZE", side)
        with pytest.raises(ValueError, match="PERSON_COMPLEMENT_SIZE must be a positive multiple of 32"):
            inf.complemented(plain)


def test_real_detector_on_a_photo(inf: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """SSDLite and CenterNet on the astronaut photo: one person, whom both find, so nothing is added
    twice; with the threshold at 0, SSDLite's person still stands once."""
    try:
        inf.find_centernet(None)
    except FileNotFoundError:
        pytest.skip("CenterNet's files are not here: `make node` installs them under vidsift/local/human")
    pytest.importorskip("openvino")
    monkeypatch.setenv("VIDSIFT_DETECTOR", "ssdlite")
    monkeypatch.setenv("PERSON_COMPLEMENT", "centernet")
    monkeypatch.setenv("PERSON_COMPLEMENT_CONFIDENCE", "0.4")
    monkeypatch.setenv("PERSON_COMPLEMENT_FRAMES", "all")  # one photo: 'fewer' would never ask CenterNet
    monkeypatch.setenv("PERSON_COMPLEMENT_SIZE", "512")  # Human's own input side
    model = inf.load_model(None)
    assert model.model_id == ("ssdlite_mobilenet_v2_person+centernet_mobilenet_v3_512_person"
                              "(people-nms=0.6)>=0.4 low")
    image = photo("astronaut")
    alone = model.backend.first.detect([image], 0.3)[0]
    second = model.backend.second.detect([image], 0.4)[0]
    out = model.backend.detect([image], 0.3)[0]
    assert len(second) >= 1 and len(alone[alone[:, 4] >= 0.5]) == 1
    assert len(out[out[:, 4] >= 0.5]) == 1  # CenterNet's box of her is SSDLite's: not added
    expected = inf.complement_rows(alone[alone[:, 4] >= 0.3], second, threshold=0.4, confident=0.5)
    assert out.tolist() == expected.tolist()


def test_local_runtime_default_has_centernet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local stack's detector (vidsift.local.sagemaker_runtime loads inference.py as the
    container does) finds the CenterNet files `make node` installs and runs the complement by
    default: CenterNet at 384 on the frames with fewer confident people, 0.35, low."""
    from vidsift.local.sagemaker_runtime import load_inference_module

    module = load_inference_module()
    try:
        module.find_centernet(None)
    except FileNotFoundError:
        pytest.skip("CenterNet's files are not here: `make node` installs them under vidsift/local/human")
    pytest.importorskip("openvino")
    for name in ("PERSON_COMPLEMENT", "PERSON_COMPLEMENT_CONFIDENCE", "PERSON_COMPLEMENT_SCORE",
                 "PERSON_COMPLEMENT_FRAMES", "PERSON_COMPLEMENT_SIZE", "CENTERNET_MODEL"):
        monkeypatch.delenv(name, raising=False)
    model = module.load_model(None, backend="ssdlite")
    assert model.model_id == ("ssdlite_mobilenet_v2_person+centernet_mobilenet_v3_384_person"
                              "(people-nms=0.6)>=0.35 low on fewer")
    assert model.backend.second.prepare(np.zeros((480, 640, 3), np.uint8)).shape == (1, 384, 384, 3)


def test_cloud_ssdlite_runs_alone() -> None:
    """sagemaker/deploy.py --backend ssdlite says the cloud container runs SSDLite alone (it has
    no OpenVINO for CenterNet and its files are not packed); YOLO's plan has no such setting."""
    deploy = load_deploy()
    ssd = deploy.make_plan(deploy.parser().parse_args(["--backend", "ssdlite"]), Path("model.tar.gz"))
    assert ssd.env["PERSON_COMPLEMENT"] == "off"
    yolo = deploy.make_plan(deploy.parser().parse_args(["--weights", "w.pt"]), Path("w.pt"))
    assert "PERSON_COMPLEMENT" not in yolo.env
