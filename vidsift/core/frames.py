"""Frame sampling with FFmpeg's libraries in-process (PyAV).

Frames are chosen by presentation time, not by counting, so variable-frame-rate video
and streams that do not start at zero get the right times; only the frames kept are
converted and JPEG-encoded, which is where a naive loop spends its time.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import av
import av.error
from PIL import Image

from vidsift.core.errors import BadInputError

#: Rekognition takes images up to 5 MB from S3 (and the endpoint's batch stays small):
#: a frame is re-encoded at lower quality until it fits.
MAX_JPEG_BYTES = 5 * 1024 * 1024 - 1024
#: Larger frames are refused before decoding: a decompression bomb cannot exhaust memory.
MAX_SOURCE_PIXELS = 7680 * 4320


@dataclass(frozen=True)
class SamplingOptions:
    fps: float = 1.0
    keyframes: bool = False
    jpeg_quality: int = 90
    max_side: int = 1920

    def __post_init__(self) -> None:
        if not self.keyframes and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg quality must be within 1..100, got {self.jpeg_quality}")


@dataclass(frozen=True)
class SampledFrame:
    index: int
    time_s: float
    width: int
    height: int
    jpeg: bytes


@dataclass
class VideoInfo:
    width: int = 0
    height: int = 0
    duration_s: float | None = None
    codec: str = ""
    frames_decoded: int = 0
    frames_sampled: int = 0
    warnings: list[str] = field(default_factory=list)


def _open(source: str | BinaryIO, what: str) -> av.container.InputContainer:
    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise BadInputError(what, f"not a readable video container ({exc.strerror or exc})") from exc


def fit(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.BILINEAR)


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    while True:
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=quality)
        if buf.tell() <= MAX_JPEG_BYTES or quality <= 30:
            return buf.getvalue()
        quality -= 15


def sample_frames(source: str | BinaryIO, options: SamplingOptions, info: VideoInfo | None = None,
                  what: str = "video") -> Iterator[SampledFrame]:
    """Yield the sampled frames of a video in order.

    With ``fps`` the k-th sample is the first frame whose time reaches ``k / fps``; its
    index is ``k``, so indices stay tied to time even across gaps. A video shorter than
    one sampling interval still yields its first frame.
    """
    info = info if info is not None else VideoInfo()
    if getattr(source, "size", None) == 0:
        raise BadInputError(what, "the object is empty (0 bytes)")
    container = _open(source, what)
    try:
        if not container.streams.video:
            raise BadInputError(what, "the file has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        info.width, info.height, info.codec = ctx.width, ctx.height, ctx.name
        if ctx.width * ctx.height > MAX_SOURCE_PIXELS:
            raise BadInputError(what, f"frame size {ctx.width}x{ctx.height} is over the {MAX_SOURCE_PIXELS} pixel cap")
        if stream.duration is not None and stream.time_base is not None:
            info.duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            info.duration_s = container.duration / av.time_base
        stream.thread_type = "AUTO"
        if options.keyframes:
            ctx.skip_frame = "NONKEY"
        start = stream.start_time if stream.start_time is not None else 0
        tb = float(stream.time_base) if stream.time_base else 0.0
        next_index = 0
        eps = 1e-6
        try:
            for frame in container.decode(stream):
                info.frames_decoded += 1
                pts = frame.pts if frame.pts is not None else frame.dts
                t = max(0.0, (pts - start) * tb) if pts is not None and tb else 0.0
                if options.keyframes:
                    index = next_index
                else:
                    if t + eps < next_index / options.fps:
                        continue
                    index = max(next_index, math.floor(t * options.fps + eps))
                next_index = index + 1
                image = fit(frame.to_image(), options.max_side)
                info.frames_sampled += 1
                yield SampledFrame(index=index, time_s=round(t, 6), width=image.width, height=image.height,
                                   jpeg=encode_jpeg(image, options.jpeg_quality))
        except av.error.FFmpegError as exc:
            if info.frames_decoded == 0:
                raise BadInputError(what, f"no frame could be decoded ({exc.strerror or exc})") from exc
            raise BadInputError(what, f"decoding stopped after {info.frames_decoded} frames: the file is damaged "
                                      f"or truncated ({exc.strerror or exc})") from exc
        if info.frames_decoded == 0:
            raise BadInputError(what, "the video stream holds no decodable frame (empty or truncated)")
    finally:
        container.close()
