"""Local face analysis: ms per frame and what it finds, on photos that ship in packages.

Why: analyze_faces calls Rekognition once per frame with people, and the local stack answers
with real models on a shared 2-core machine; this shows what each level of DetectFaces costs
here and that it still finds the right faces. Modes:

* detect: yuface alone (box, 5 landmarks, confidence, quality), what runs without Node;
* default: + Human's face mesh (pose, 30 landmarks), Rekognition's DEFAULT attributes;
* all: + emotion and age/gender models, Rekognition's ALL (what analyze_faces asks for);
* http-all: ALL through the local DetectFaces service and a boto3 client (JPEG, JSON, base64).

    python -m bench.bench_faces [--repeat 5] [--modes detect default all http-all]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import matplotlib.cbook
import numpy as np
from skimage import data
from tqdm import tqdm

# Photo -> faces a person sees in it (the expected count).
PHOTOS = {"astronaut": 1, "grace_hopper": 1, "camera": 1, "coffee": 0, "chelsea": 0}
MODES = ("detect", "default", "all", "http-all")


def photo(name: str) -> np.ndarray:
    if name == "grace_hopper":
        image = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
        assert image is not None
        return image
    rgb = getattr(data, name)()
    return cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR if rgb.ndim == 2 else cv2.COLOR_RGB2BGR)


def lfw_tile(face: np.ndarray) -> np.ndarray:
    """A 25x25 lfw_subset crop, x4 and on a gray margin, so a detector sees a whole head."""
    gray = cv2.resize((face * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
    gray = cv2.copyMakeBorder(gray, 50, 50, 50, 50, cv2.BORDER_CONSTANT, value=128)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


@dataclass
class Row:
    mode: str
    photo: str
    size: str
    expected: int
    found: int
    ms: list[float] = field(default_factory=list)
    note: str = ""


def _time(fn: Callable[[], list], repeat: int) -> tuple[list[float], list]:
    result = fn()  # warm-up, not timed
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(1000.0 * (time.perf_counter() - start))
    return times, result


def _describe(face: dict) -> str:
    parts = []
    if "AgeRange" in face:
        parts.append(f"age {face['AgeRange']['Low']}-{face['AgeRange']['High']}")
    if "Gender" in face:
        parts.append(f"{face['Gender']['Value']} {face['Gender']['Confidence']:.0f}%")
    if face.get("Emotions"):
        top = face["Emotions"][0]
        parts.append(f"{top['Type']} {top['Confidence']:.0f}%")
    if "Pose" in face:
        parts.append("yaw {Yaw:+.0f} pitch {Pitch:+.0f} roll {Roll:+.0f}".format(**face["Pose"]))
    return ", ".join(parts)


def run(modes: list[str], repeat: int) -> list[Row]:
    import os

    os.environ.setdefault("HOME", tempfile.mkdtemp(prefix="vidsift-bench-home-"))
    from vidsift.local import face_analyzer as fa

    images = {name: photo(name) for name in PHOTOS}
    rows: list[Row] = []
    detector = fa.FaceAnalyzer(attributes=False)
    full = fa.FaceAnalyzer(attributes=True) if set(modes) - {"detect"} else None
    if full is not None and not full.has_attributes:
        print(f"attribute models unavailable ({full.attributes_error}): default/all modes skipped")
        modes = [m for m in modes if m == "detect"]
    service = client = None
    if "http-all" in modes:
        import boto3

        from vidsift.local import rekognition

        service = rekognition.serve(analyzer=full)
        client = boto3.client("rekognition", endpoint_url=service.url, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
    jobs = [(m, n) for m in modes for n in PHOTOS]
    try:
        for mode, name in tqdm(jobs, desc="faces", unit="photo"):
            image = images[name]
            fn: Callable[[], list]
            if mode == "detect":
                fn = lambda image=image: detector.analyze(image)  # noqa: E731
            elif mode in ("default", "all"):
                fn = lambda image=image, a=(mode == "all"): full.analyze(image, a)  # noqa: E731
            else:
                _ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
                payload = buf.tobytes()
                fn = lambda payload=payload: client.detect_faces(  # noqa: E731
                    Image={"Bytes": payload}, Attributes=["ALL"])["FaceDetails"]
            times, faces = _time(fn, repeat)
            rows.append(Row(mode, name, f"{image.shape[1]}x{image.shape[0]}", PHOTOS[name], len(faces), times,
                            _describe(faces[0]) if faces else ""))
        # lfw_subset: 100 small face crops, then 100 crops without a face (detection only).
        tiles = data.lfw_subset()
        start = time.perf_counter()
        found = [len(detector.analyze(lfw_tile(t))) for t in tqdm(tiles, desc="lfw_subset", unit="crop")]
        per = 1000.0 * (time.perf_counter() - start) / len(tiles)
        rows.append(Row("detect", "lfw faces", "200x200", 100, sum(n == 1 for n in found[:100]), [per]))
        rows.append(Row("detect", "lfw non-faces", "200x200", 0, sum(n > 0 for n in found[100:]), [per]))
    finally:
        if service is not None:
            service.stop()
        detector.close()
        if full is not None:
            full.close()
    return rows


def print_table(rows: list[Row]) -> None:
    head = f"{'mode':<9} {'photo':<14} {'size':>8} {'faces/exp':>9} {'ms med':>7} {'ms p90':>7}  notes"
    print(head)
    print("-" * len(head))
    for r in rows:
        med = statistics.median(r.ms)
        p90 = sorted(r.ms)[max(0, round(0.9 * len(r.ms)) - 1)]
        print(f"{r.mode:<9} {r.photo:<14} {r.size:>8} {f'{r.found}/{r.expected}':>9} {med:>7.1f} {p90:>7.1f}  {r.note}")
    print()
    for mode in dict.fromkeys(r.mode for r in rows):
        photos = [r for r in rows if r.mode == mode and r.photo in PHOTOS]
        if not photos:
            continue
        with_face = [statistics.median(r.ms) for r in photos if r.found]
        without = [statistics.median(r.ms) for r in photos if not r.found]
        exact = sum(r.found == r.expected for r in photos)
        print(f"{mode:<9} exact on {exact}/{len(photos)} photos; ms/frame with a face "
              f"{statistics.mean(with_face) if with_face else float('nan'):.0f}, without "
              f"{statistics.mean(without) if without else float('nan'):.0f}")


def main(argv: list[str] | None = None) -> None:
    """Benchmark entry point (``python -m bench faces`` calls it with no arguments)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per photo and mode (after 1 warm-up)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args(argv or [])
    print_table(run(args.modes, args.repeat))


if __name__ == "__main__":
    main(sys.argv[1:])
