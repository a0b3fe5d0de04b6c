"""Near-duplicate frames: a static scene should not send the same picture downstream again.

A camera pointed at an empty corridor produces one sample a second that all look alike;
each one costs a detector call and a Rekognition call for nothing. A perceptual hash
(pHash: the signs of the lowest 8x8 DCT coefficients of a 32x32 grayscale thumbnail)
changes little under sensor noise, compression and a few pixels of drift, and a lot when
the content changes, so a frame within a few bits of the last frame *kept* is skipped.
Comparing with the last kept frame (not the last sampled one) stops a slow drift from
being skipped forever.
"""

from __future__ import annotations

from functools import cache

import av
import numpy as np

#: Bits (of 64) two frames may differ in and still count as the same picture. Measured on
#: the sample photos at 320x240: a still scene under heavy sensor noise stays within 0-4
#: bits, a view panning by a few pixels a second moves 4-16 bits, a different photo is
#: 22-36 bits away. So a still camera's repeats are skipped and any real change is kept.
DEFAULT_DISTANCE = 6
_SIDE = 32
_KEEP = 8


@cache
def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis, so ``D @ x @ D.T`` is the 2-D DCT (numpy has no dct)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    d[0, :] = np.sqrt(1.0 / n)
    return d


def phash_gray(gray: np.ndarray) -> int:
    """64-bit pHash of a 32x32 grayscale array."""
    if gray.shape != (_SIDE, _SIDE):
        raise ValueError(f"expected a {_SIDE}x{_SIDE} thumbnail, got {gray.shape}")
    d = _dct_matrix(_SIDE)
    coeffs = (d @ gray.astype(np.float64) @ d.T)[:_KEEP, :_KEEP].ravel()
    # The DC term only says how bright the picture is; it stays out of the median.
    bits = coeffs > np.median(coeffs[1:])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def frame_hash(frame: av.VideoFrame) -> int:
    """pHash of a decoded frame; swscale makes the thumbnail straight from YUV (no RGB copy)."""
    thumb = frame.reformat(width=_SIDE, height=_SIDE, format="gray", interpolation="AREA")
    return phash_gray(thumb.to_ndarray())


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class Deduplicator:
    """Says whether a sampled frame repeats the last kept one; ``max_distance=0`` disables it."""

    def __init__(self, max_distance: int) -> None:
        if not 0 <= max_distance <= 64:
            raise ValueError(f"dedup distance must be within 0..64 bits, got {max_distance}")
        self.max_distance = max_distance
        self.last_kept: int | None = None

    @property
    def enabled(self) -> bool:
        return self.max_distance > 0

    def is_duplicate(self, frame: av.VideoFrame) -> bool:
        if not self.enabled:
            return False
        h = frame_hash(frame)
        if self.last_kept is not None and distance(h, self.last_kept) <= self.max_distance:
            return True
        self.last_kept = h
        return False


def parse_setting(value: str | None) -> int:
    """``DEDUP`` / ``x-amz-meta-dedup``: off (default), on (the default distance), or the
    distance in bits itself (0 is off)."""
    raw = (value or "").strip().lower()
    if raw in ("", "off", "false", "no", "none"):
        return 0
    if raw in ("on", "true", "yes"):
        return DEFAULT_DISTANCE
    try:
        bits = int(raw)
    except ValueError as exc:
        raise ValueError(f"dedup must be on, off or a number of bits (0-64), got {value!r}") from exc
    if not 0 <= bits <= 64:
        raise ValueError(f"dedup distance must be within 0..64 bits, got {bits}")
    return bits
