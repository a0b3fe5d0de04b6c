"""Sample videos made from photos that ship inside installed packages.

No download and no binary test fixture in the repo: the demo, the tests and the
benchmarks build their videos here, with a little motion and noise so that decoding
costs what real footage costs and motion checks fire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

#: Photos by whether they show a person: what the detector must and must not find.
WITH_PEOPLE = ("astronaut", "grace_hopper", "camera")
WITHOUT_PEOPLE = ("coffee", "chelsea", "rocket")


def photo(name: str) -> np.ndarray:
    """An RGB uint8 array of a bundled photo."""
    if name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            return np.asarray(Image.open(f).convert("RGB"))
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


@dataclass(frozen=True)
class Segment:
    """A stretch of a sample video showing one bundled photo: whether the photo has people is the
    truth the demo and the tests check the detector against."""

    photo: str
    seconds: float

    @property
    def has_people(self) -> bool:
        """Whether the segment's photo shows a person: what the detector must find there."""
        return self.photo in WITH_PEOPLE


DEMO_SEGMENTS = (
    Segment("coffee", 3), Segment("astronaut", 3), Segment("chelsea", 3),
    Segment("grace_hopper", 3), Segment("rocket", 3), Segment("camera", 3),
)


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """``rgb`` as JPEG bytes, as split_frames writes frames (quality 85 unless asked): what the
    tests upload as frames, snapshots and faces."""
    import io

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _fit(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Letterbox a photo into the frame, keeping its aspect ratio."""
    pil = Image.fromarray(img)
    scale = min(width / pil.width, height / pil.height) * 0.9
    pil = pil.resize((max(1, int(pil.width * scale)), max(1, int(pil.height * scale))), Image.Resampling.BILINEAR)
    canvas = np.full((height, width, 3), 32, np.uint8)
    y, x = (height - pil.height) // 2, (width - pil.width) // 2
    canvas[y : y + pil.height, x : x + pil.width] = np.asarray(pil)
    return canvas


def make_video(path: str | Path, segments: Sequence[Segment] = DEMO_SEGMENTS, *, fps: int = 15,
               width: int = 640, height: int = 480, gop_seconds: float = 2.0, seed: int = 7,
               codec: str = "libx264", crf: int = 23) -> Path:
    """Write an H.264 MP4 (keyframe every ``gop_seconds``) that shows each segment's photo,
    drifting slowly with sensor-like noise."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = max(1, round(gop_seconds * fps))
        stream.options = {"crf": str(crf), "preset": "veryfast", "bf": "0"} if codec == "libx264" else {}
        n = 0
        for seg in segments:
            base = _fit(photo(seg.photo), width + 16, height + 16)
            for i in range(max(1, round(seg.seconds * fps))):
                dx, dy = (i // 2) % 16, (i // 3) % 16
                img = base[dy : dy + height, dx : dx + width].astype(np.int16)
                img += rng.integers(-6, 7, size=img.shape, dtype=np.int16)
                frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
                frame.pts = n
                n += 1
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
