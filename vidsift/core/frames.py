"""Frame sampling with FFmpeg's libraries in-process (PyAV), at the speed of the decoder.

Frames are chosen by presentation time, not by counting, so variable-frame-rate video and
streams that do not start at zero get the right times. The rule, in exact integer
arithmetic on the stream's own timestamps: with ``rate`` samples a second, a frame at time
``t`` (seconds since the stream's start) has grid index ``g(t) = floor(t * rate)``, and it is
kept when ``g(t)`` reaches the next index still wanted; its index is ``g(t)``. So the k-th
sample is the first frame at or after ``k / rate``, indices stay tied to time across gaps,
and a video shorter than one interval still yields its first frame. Keyframes-only mode is
the same rule with ``rate = 1000``: a keyframe's index is its time in milliseconds, which a
segment can compute on its own (an ordinal could not be known without the frames before).

Where the time goes, and what is done about it:

* Decoding. Frame-threaded, and only what a sample needs: after a sample, if the next
  target lies in a later GOP (keyframe interval), the packets up to that GOP's keyframe
  are dropped without decoding (within two GOPs: a seek would flush and stall the frame
  threads) or seeked past (further: that also spares reading the bytes). In keyframes
  mode only keyframe packets reach the decoder, so its threads decode several at once.
  The GOP structure comes from the keyframe index the container already holds (MP4/MOV,
  Matroska with cues, AVI); without one, every frame is decoded. The results are
  identical to decoding every frame, because the index is only trusted as far as the
  packets confirm it: a keyframe that is not where the index said, or a seek that lands
  after the target, falls back to an earlier keyframe.
* Converting and encoding. Only frames that are kept are converted (swscale scales and
  converts in one pass) and JPEG-encoded, on worker threads (both release the GIL) while
  the next frames decode.
* Reading. The source may be any seekable file object (``S3RangeReader``): nothing is
  copied to disk and memory stays bounded by the reader's block cache and the decoder.

Truncated files end in one ``BadInputError``: the container cannot be opened (the MP4
index, ``moov``, is missing or cut), no frame decodes, or the stream stops well short of
the duration the container declares. In the last case the frames before the cut are
still produced first (they are deterministic, so a retry overwrites them).
"""

from __future__ import annotations

import io
import itertools
import math
import os
import re
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, BinaryIO

import av
import av.error
from PIL import Image

from vidsift.core.errors import BadInputError

if TYPE_CHECKING:
    from vidsift.core.dedup import Deduplicator

#: Rekognition takes images up to 5 MB from S3 (and the endpoint's batch stays small):
#: a frame is re-encoded at lower quality, then smaller, until it fits.
MAX_JPEG_BYTES = 5 * 1024 * 1024 - 1024
#: Larger frames are refused before decoding: a decompression bomb cannot exhaust memory.
MAX_SOURCE_PIXELS = 7680 * 4320
#: Keyframes-only mode indexes frames by milliseconds.
KEYFRAME_RATE = 1000
STRATEGIES = ("auto", "sequential", "seek")
#: Containers whose keyframe index is complete once opened (read from the header/trailer).
_INDEXED_FORMATS = ("mov", "mp4", "matroska", "webm", "avi")
#: A seek costs a decoder flush and a refill of the frame-thread pipeline: about this many
#: frames' worth of decoding (measured on 720p H.264, 2 cores).
_SEEK_COST_FRAMES = 4
#: Skipping ahead by at most this many GOPs drops packets (no flush, no stall); further, it seeks.
_DROP_WITHIN_GOPS = 2
#: Skipping is chosen when it is expected to decode at most this share of the frames
#: sequential decoding would (it costs nothing when nothing is skipped, but a little
#: bookkeeping per frame).
_SEEK_WORTH = 0.95
#: Keyframes-only mode sends only packets the demuxer flags as keyframes; after this many
#: packets without one, it sends all and lets the decoder skip (``skip_frame=NONKEY``).
_UNFLAGGED_KEYFRAMES = 600
#: A stream that ends more than this short of its declared duration was cut.
_TRUNCATION_SLACK_S = 0.5

_TRANSPOSE = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


@dataclass(frozen=True)
class SamplingOptions:
    """What to sample and how to encode it; the same object drives split_frames and the CLI."""

    fps: float = 1.0
    keyframes: bool = False
    jpeg_quality: int = 90
    max_side: int = 1920
    #: No JPEG above this many bytes is ever produced (Rekognition's S3 image limit is 5 MB).
    max_bytes: int = MAX_JPEG_BYTES
    #: Skip a sampled frame within this many pHash bits of the last kept one (0: keep all).
    dedup_distance: int = 0
    #: auto (cheapest by the keyframe index), sequential, or seek.
    strategy: str = "auto"

    def __post_init__(self) -> None:
        if not self.keyframes and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg quality must be within 1..100, got {self.jpeg_quality}")
        if self.max_side < 16:
            raise ValueError(f"max side must be at least 16 pixels, got {self.max_side}")
        if self.max_bytes < 16 * 1024:
            raise ValueError(f"max bytes must be at least 16 KiB, got {self.max_bytes}")
        if not 0 <= self.dedup_distance <= 64:
            raise ValueError(f"dedup distance must be within 0..64 bits, got {self.dedup_distance}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")

    @property
    def rate(self) -> Fraction:
        """Grid points per second: a frame's index is ``floor(t * rate)``."""
        if self.keyframes:
            return Fraction(KEYFRAME_RATE)
        return Fraction(self.fps).limit_denominator(1_000_000)


@dataclass(frozen=True)
class SampledFrame:
    """One frame split_frames chose, already encoded: its index and time in the video are what
    its key and its rows are named by."""

    index: int
    time_s: float
    width: int
    height: int
    jpeg: bytes


@dataclass
class VideoInfo:
    """What is known about a video and what sampling it took; it fills in as frames flow."""

    width: int = 0
    height: int = 0
    duration_s: float | None = None
    codec: str = ""
    container: str = ""
    #: Counter-clockwise degrees the display matrix asks for; kept frames are turned upright.
    rotation: int = 0
    nominal_fps: float | None = None
    keyframe_interval_s: float | None = None
    strategy: str = ""
    frames_decoded: int = 0
    #: Frames chosen by the sampling rule.
    frames_sampled: int = 0
    #: Frames produced (sampled minus near-duplicates skipped).
    frames_kept: int = 0
    duplicates_skipped: int = 0
    seeks: int = 0
    #: Packets read but never decoded (no sample needed them).
    packets_skipped: int = 0
    decode_errors: int = 0
    last_time_s: float | None = None
    warnings: list[str] = field(default_factory=list)


def _size_of(source: str | os.PathLike[str] | BinaryIO) -> int | None:
    size = getattr(source, "size", None)
    if isinstance(size, int):
        return size
    if isinstance(source, str | os.PathLike):
        try:
            return os.path.getsize(source)
        except OSError:
            return None
    return None


_MP4_TOP = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin", b"uuid", b"sidx", b"moof",
            b"mfra", b"meta"}


def mp4_diagnosis(source: str | os.PathLike[str] | BinaryIO) -> str | None:
    """Why an MP4/MOV is unreadable, in words, from its top-level boxes; None if not MP4 or fine.

    Only called after FFmpeg failed, so the common path pays nothing for it. Reads a few
    16-byte box headers (a couple of ranged GETs on S3).
    """
    size = _size_of(source)
    if not size:
        return None
    own = isinstance(source, str | os.PathLike)
    f: BinaryIO = open(source, "rb") if own else source  # noqa: SIM115 - closed below
    saved = None if own else f.tell()
    try:
        pos, seen = 0, []
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size, box = int.from_bytes(header[:4], "big"), header[4:8]
            if pos == 0 and box not in _MP4_TOP:
                return None
            if box_size == 1 and len(header) >= 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:
                box_size = size - pos
            if box_size < 8:
                return f"the MP4 is damaged: a box at byte {pos} has an impossible size ({box_size})"
            name = box.decode("latin-1")
            seen.append(box)
            if pos + box_size > size:
                return (f"the file is truncated: its '{name}' box needs {box_size} bytes from byte {pos} but the file "
                        f"ends after {size - pos}" + ("" if b"moov" in seen else " (and no 'moov' index precedes it)"))
            pos += box_size
        if b"moov" not in seen and b"moof" not in seen:
            return "the file is truncated: it has no 'moov' box (the MP4 index is written last, so the upload or " \
                   "recording stopped before the file was finalised)"
        return None
    except OSError:
        return None
    finally:
        if own:
            f.close()
        elif saved is not None:
            f.seek(saved)


def _explain(source: str | os.PathLike[str] | BinaryIO, reason: str) -> str:
    diagnosis = mp4_diagnosis(source)
    return f"{reason}; {diagnosis}" if diagnosis else reason


def _open(source: str | os.PathLike[str] | BinaryIO, what: str) -> av.container.InputContainer:
    try:
        return av.open(os.fspath(source) if isinstance(source, os.PathLike) else source, mode="r",
                       metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise BadInputError(what, _explain(source, f"not a readable video container ({exc.strerror or exc})")) from exc


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    if max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit(image: Image.Image, max_side: int) -> Image.Image:
    size = fit_size(image.width, image.height, max_side)
    return image if size == image.size else image.resize(size, Image.Resampling.BILINEAR)


def encode_jpeg(image: Image.Image, quality: int, max_bytes: int = MAX_JPEG_BYTES) -> bytes:
    """JPEG bytes no larger than ``max_bytes``: lower quality first (down to 30), then smaller."""
    while True:
        q = quality
        while True:
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=q)
            if buf.tell() <= max_bytes:
                return buf.getvalue()
            if q <= 30:
                break
            q = max(30, q - 15)
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)),
                             Image.Resampling.BILINEAR)


def _render(frame: av.VideoFrame, rotation: int, options: SamplingOptions) -> tuple[int, int, bytes]:
    """Scale, convert, turn upright and encode one kept frame (runs on a worker thread)."""
    w, h = fit_size(frame.width, frame.height, options.max_side)
    # swscale converts (and scales, in the same pass) straight into an RGB plane that Pillow
    # reads with its stride; VideoFrame.to_image copies it row by row in Python, 3x slower.
    scaled = (w, h) != (frame.width, frame.height)
    rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA" if scaled else None)
    plane = rgb.planes[0]
    if plane.line_size > 0:
        image = Image.frombuffer("RGB", (rgb.width, rgb.height), memoryview(plane), "raw", "RGB", plane.line_size, 1)
    else:
        image = rgb.to_image()
    if rotation:
        image = image.transpose(_TRANSPOSE[rotation])
    return image.width, image.height, encode_jpeg(image, options.jpeg_quality, options.max_bytes)


def _normal_rotation(degrees: float | None) -> int:
    if not degrees:
        return 0
    quarter = round(degrees / 90)
    return (quarter * 90) % 360 if abs(degrees - quarter * 90) < 1 else 0


_DURATION_TAG = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$")


class VideoFile:
    """An opened video: probed at once (size, duration, keyframe index), sampled on demand.

    One object serves several samplings of the same video (the CLI, a segment, a test
    comparing strategies) so the container is opened, and the index read, once.
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, what: str = "video") -> None:
        self.source, self.what = source, what
        if _size_of(source) == 0:
            raise BadInputError(what, "the object is empty (0 bytes)")
        self.container = _open(source, what)
        try:
            self._probe()
        except BaseException:
            self.container.close()
            raise

    def _probe(self) -> None:
        c = self.container
        if not c.streams.video:
            if not c.streams:
                raise BadInputError(self.what, _explain(self.source, "the file holds no stream at all"))
            raise BadInputError(self.what, "the file has no video stream")
        self.stream = stream = c.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # PyAV gives no decoder context when FFmpeg has no decoder for the codec
            raise BadInputError(self.what, "the video codec is not supported (FFmpeg has no decoder for it)")
        self.width, self.height, self.codec = ctx.width, ctx.height, ctx.name
        if self.width * self.height > MAX_SOURCE_PIXELS:
            raise BadInputError(self.what, f"frame size {self.width}x{self.height} is over the "
                                           f"{MAX_SOURCE_PIXELS} pixel cap")
        if stream.time_base is None:
            raise BadInputError(self.what, "the video stream has no time base")
        self.time_base = Fraction(stream.time_base)
        if stream.start_time is not None:
            self.start_pts = int(stream.start_time)
        elif c.start_time is not None:
            self.start_pts = int(Fraction(c.start_time, av.time_base) / self.time_base)
        else:
            self.start_pts = 0
        #: The video stream's own duration (not the container's, which may include a longer
        #: audio track): what the truncation check compares with.
        self.stream_duration_s: float | None = None
        if stream.duration:
            self.stream_duration_s = float(stream.duration * self.time_base)
        else:
            m = _DURATION_TAG.match(str(stream.metadata.get("DURATION", "")).strip())
            if m:  # Matroska's tag: FFmpeg writes the track's end time, so take the start off
                tag = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
                self.stream_duration_s = max(0.0, tag - float(self.start_pts * self.time_base))
        self.duration_s = self.stream_duration_s
        if self.duration_s is None and c.duration is not None:
            self.duration_s = c.duration / av.time_base
        rate = stream.average_rate or stream.guessed_rate
        self.nominal_fps = float(rate) if rate else None
        self.format = c.format.name if c.format else ""
        self.keyframe_ticks = self._keyframes()
        self.used = False
        gaps = sorted(b - a for a, b in itertools.pairwise(self.keyframe_ticks))
        self.gop_ticks = gaps[len(gaps) // 2] if gaps else None

    def _keyframes(self) -> list[int]:
        """Keyframe times (ticks since the first frame) from the container's index, or [] when
        the index is missing or not known to be complete (MPEG-TS, raw streams).

        MP4 indexes decode timestamps; keyframe presentation times differ from them by the
        constant reorder delay, so times relative to the first entry are presentation times
        relative to the first frame. Where that is off, only the speed suffers: a seek is
        verified against the frames it yields.
        """
        if not any(name in self.format.split(",") for name in _INDEXED_FORMATS) or not self.seekable:
            return []
        entries = self.stream.index_entries
        if len(entries) == 0:
            return []
        origin = entries[0].timestamp
        keys = sorted({e.timestamp - origin for e in entries if e.is_keyframe})
        if self.stream_duration_s and keys and len(keys) < 2 and self.stream_duration_s > 30:
            return []
        return keys

    @property
    def seekable(self) -> bool:
        if isinstance(self.source, str | os.PathLike):
            return True
        seekable = getattr(self.source, "seekable", None)
        return bool(seekable()) if callable(seekable) else False

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- sampling -------------------------------------------------------------------------

    def describe(self, info: VideoInfo) -> VideoInfo:
        info.width, info.height, info.codec, info.container = self.width, self.height, self.codec, self.format
        info.duration_s, info.nominal_fps = self.duration_s, self.nominal_fps
        if self.gop_ticks:
            info.keyframe_interval_s = round(float(self.gop_ticks * self.time_base), 6)
        return info

    def choose_strategy(self, options: SamplingOptions, start_s: float = 0.0, end_s: float | None = None) -> str:
        """sequential, seek or keyframes, from the keyframe index (see the module docstring)."""
        if options.keyframes:
            return "keyframes"
        if options.strategy != "auto":
            if options.strategy == "seek" and (not self.keyframe_ticks or not self.seekable):
                return "sequential"
            return options.strategy
        if len(self.keyframe_ticks) < 2 or not self.seekable or not self.duration_s:
            return "sequential"
        return "seek" if self._seek_cost(options, start_s, end_s) < _SEEK_WORTH else "sequential"

    def _seek_cost(self, options: SamplingOptions, start_s: float, end_s: float | None) -> float:
        """Decoding work of seek-based sampling as a share of sequential decoding (estimate)."""
        assert self.duration_s is not None
        tb = self.time_base
        end = min(end_s, self.duration_s) if end_s is not None else self.duration_s
        rate = options.rate
        k, k_end = self._first_index(start_s, rate), math.ceil(end * rate)
        if k_end - k > 500_000:
            return 1.0  # samples denser than any GOP: nothing to skip
        frame_ticks = 1 / (Fraction(self.nominal_fps or 30).limit_denominator(1000) * tb)
        overhead = _SEEK_COST_FRAMES * frame_ticks
        keys = self.keyframe_ticks
        cost, pos = Fraction(0), None
        first = self._grid_ticks(k, rate)
        seq_start = keys[max(0, bisect_right(keys, first) - 1)]
        reach = _DROP_WITHIN_GOPS * (self.gop_ticks or 0)
        while k < k_end:
            target = self._grid_ticks(k, rate)
            key = keys[max(0, bisect_right(keys, target) - 1)]
            if pos is not None and key <= pos:  # same GOP: decode on
                cost += target - pos
            elif pos is not None and key - pos <= reach:  # drop the packets in between
                cost += target - key
            else:  # seek
                cost += target - key + overhead
            pos, k = target, k + 1
        sequential = Fraction(end) / tb - seq_start
        return float(cost / sequential) if sequential > 0 else 1.0

    def _grid_ticks(self, k: int, rate: Fraction) -> int:
        """The first stream tick (since the start) whose time is at or after grid point k."""
        return math.ceil(Fraction(k) / (rate * self.time_base))

    @staticmethod
    def _first_index(start_s: float, rate: Fraction) -> int:
        # Segment starts arrive as floats rounded to the microsecond: tolerate that much.
        return max(0, math.ceil(float(Fraction(start_s) * rate) - 1e-6)) if start_s > 0 else 0

    def sample(self, options: SamplingOptions, info: VideoInfo | None = None, *, start_s: float = 0.0,
               end_s: float | None = None, workers: int = 2) -> Iterator[SampledFrame]:
        """Yield the sampled frames whose grid index falls in ``[start_s, end_s)`` (all when
        ``end_s`` is None), in order; see the module docstring for the rule."""
        info = self.describe(info if info is not None else VideoInfo())
        return _Sampler(self, options, info, start_s, end_s, workers).run()


class _Sampler:
    """One pass of sampling over one range of a video (decode, select, dedup, encode)."""

    def __init__(self, video: VideoFile, options: SamplingOptions, info: VideoInfo, start_s: float,
                 end_s: float | None, workers: int) -> None:
        self.v, self.options, self.info = video, options, info
        self.rate = options.rate
        tb = video.time_base
        # g(ticks) = floor(ticks * tb * rate) = ticks * num // den, exactly.
        self.num = tb.numerator * self.rate.numerator
        self.den = tb.denominator * self.rate.denominator
        self.first_k = video._first_index(start_s, self.rate)
        self.end_k = math.ceil(float(Fraction(end_s) * self.rate) - 1e-6) if end_s is not None else None
        self.strategy = info.strategy = video.choose_strategy(options, start_s, end_s)
        self.workers = max(1, workers)
        self.dedup: Deduplicator | None = None
        if options.dedup_distance:  # imported here: numpy costs a CLI run 60 ms of startup otherwise
            from vidsift.core.dedup import Deduplicator

            self.dedup = Deduplicator(options.dedup_distance)
        self.end_seen = -1  # ticks: the furthest packet end read
        self.sent = -1  # ticks: the latest packet handed to the decoder
        self.resume_at: int | None = None  # drop packets until this keyframe (ticks)...
        self.resume_target = 0  # ...which must not be after this sample time
        self.overshot = False
        self.flagged_keys = 0
        self.keys_only = options.keyframes  # send the decoder only packets flagged as keyframes
        self.rewind = False
        self.frame_ticks = int(1 / (Fraction(video.nominal_fps or 30).limit_denominator(1000) * tb)) or 1
        self.last_ticks = -1

    # -- decoding ----------------------------------------------------------------------

    def _ticks(self, frame: av.VideoFrame) -> int:
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:  # no timestamp at all: assume the nominal frame duration
            return self.last_ticks + self.frame_ticks
        return max(0, int(pts) - self.v.start_pts)

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Frames in presentation order from the container's current position.

        Packets no sample needs never reach the decoder: in keyframes mode every packet that
        is not a keyframe, and while ``resume_at`` is set every packet before that keyframe
        (the rest of a GOP after its last sample). Dropping them, rather than seeking, keeps
        the frame threads busy: a seek flushes and stalls them. A packet the decoder rejects
        is skipped (as the ffmpeg command does); a read error ends the stream here, and the
        duration check tells a cut file from a finished one.
        """
        ctx = self.v.stream.codec_context
        packets = self.v.container.demux(self.v.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                # Still waiting for the keyframe the index promised: it is not there (the index
                # was off, or the file is cut), so find the sample's keyframe by seeking.
                self.overshot = self.resume_at is not None
                return
            except av.error.FFmpegError as exc:
                self.info.decode_errors += 1
                self.info.warnings.append(f"reading stopped: {exc.strerror or exc}")
                packet = None
            if packet is not None and packet.size:
                ts = packet.pts if packet.pts is not None else packet.dts
                rel = None if ts is None else int(ts) - self.v.start_pts
                if rel is not None:
                    self.end_seen = max(self.end_seen, rel + int(packet.duration or self.frame_ticks))
                if packet.is_keyframe:
                    self.flagged_keys += 1
                elif self.keys_only:
                    self.info.packets_skipped += 1
                    if self.flagged_keys or self.info.packets_skipped < _UNFLAGGED_KEYFRAMES:
                        continue
                    # The demuxer flags no keyframes: start over sending every packet, and let
                    # the decoder pick the keyframes (nothing was decoded so far).
                    self.keys_only, self.rewind = False, True
                    return
                if self.resume_at is not None:
                    if not packet.is_keyframe or rel is None or rel < self.resume_at:
                        self.info.packets_skipped += 1
                        continue
                    self.resume_at = None
                    if rel > self.resume_target:  # the index was off: find the right keyframe by seeking
                        self.overshot = True
                        return
                if rel is not None:
                    self.sent = max(self.sent, rel)
            try:
                yield from ctx.decode(packet)
            except av.error.EOFError:
                return
            except av.error.FFmpegError as exc:
                self.info.decode_errors += 1
                if len(self.info.warnings) < 20:
                    self.info.warnings.append(f"a packet did not decode: {exc.strerror or exc}")
            if packet is None:
                return

    def _seek(self, target: int) -> Iterator[av.VideoFrame]:
        """Frames from the keyframe before ``target`` (ticks). Accepted only if the first
        frame is at or before the target, so nothing sequential decoding would yield is
        missed; otherwise back off to an earlier keyframe."""
        back = 0
        while True:
            ticks = max(0, target - back)
            self.v.container.seek(self.v.start_pts + ticks, stream=self.v.stream, backward=True)
            self.v.used = True
            self.info.seeks += 1
            self.sent, self.resume_at = -1, None
            frames = self._decode()
            first = next(frames, None)
            if first is None:  # nothing at or after this point: the stream ended (or was cut) before
                return iter(())
            if ticks == 0 or self._ticks(first) <= target:
                return itertools.chain([first], frames)
            back = max(2 * back, self.v.gop_ticks or 0, int(1 / self.v.time_base))

    # -- the pass ----------------------------------------------------------------------

    def run(self) -> Iterator[SampledFrame]:
        options, info = self.options, self.info
        ctx = self.v.stream.codec_context
        if not ctx.is_open:  # threading is fixed when the decoder opens (on the first packet)
            ctx.thread_type, ctx.thread_count = "AUTO", 0
        ctx.skip_frame = "NONKEY" if options.keyframes else "DEFAULT"
        keys = self.v.keyframe_ticks
        next_k = self.first_k
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="jpeg")
        pending: deque[tuple[int, int, Future[tuple[int, int, bytes]]]] = deque()
        depth = 2 * self.workers
        reached_end = False
        rotation: int | None = None
        try:
            if next_k > 0:
                frames = self._seek(self.v._grid_ticks(next_k, self.rate))
            else:
                if self.v.used:  # a second pass over the same file starts over
                    self.v.container.seek(self.v.start_pts, stream=self.v.stream, backward=True)
                self.v.used = True
                frames = self._decode()
            while True:
                frame = next(frames, None)
                if frame is None:
                    if self.overshot:
                        self.overshot = False
                        frames = self._seek(self.resume_target)
                        continue
                    if self.rewind:
                        self.rewind = False
                        frames = self._seek(self.v._grid_ticks(self.first_k, self.rate))
                        continue
                    break
                ticks = self._ticks(frame)
                self.last_ticks = ticks
                info.frames_decoded += 1
                g = ticks * self.num // self.den
                if g < next_k:
                    continue
                if self.end_k is not None and g >= self.end_k:
                    reached_end = True
                    break
                next_k = g + 1
                info.frames_sampled += 1
                if self.dedup is not None and self.dedup.is_duplicate(frame):
                    info.duplicates_skipped += 1
                else:
                    if rotation is None:
                        rotation = info.rotation = _normal_rotation(frame.rotation)
                    pending.append((g, ticks, pool.submit(_render, frame, rotation, options)))
                    while len(pending) > depth:
                        yield self._finish(*pending.popleft())
                if self.end_k is not None and next_k >= self.end_k:
                    reached_end = True
                    break
                if self.strategy == "seek":
                    target = self.v._grid_ticks(next_k, self.rate)
                    key = keys[max(0, bisect_right(keys, target) - 1)]
                    if key > self.sent:  # the next sample's GOP is not in the decoder yet: skip to it
                        if key - self.sent <= _DROP_WITHIN_GOPS * (self.v.gop_ticks or 0):
                            self.resume_at, self.resume_target = key, target
                        else:  # far ahead: seeking also spares reading the bytes in between
                            frames = self._seek(target)
            if self.last_ticks >= 0:
                info.last_time_s = round(float(self.last_ticks * self.v.time_base), 6)
            while pending:
                yield self._finish(*pending.popleft())
        finally:
            for *_, fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
        self._check_complete(reached_end)

    def _finish(self, index: int, ticks: int, fut: Future[tuple[int, int, bytes]]) -> SampledFrame:
        width, height, jpeg = fut.result()
        self.info.frames_kept += 1
        return SampledFrame(index=index, time_s=round(float(ticks * self.v.time_base), 6), width=width,
                            height=height, jpeg=jpeg)

    def _check_complete(self, reached_end: bool) -> None:
        """Raise if the stream stopped short: nothing decoded, or well before its declared end."""
        info, v = self.info, self.v
        if info.frames_decoded == 0 and self.first_k == 0:
            raise BadInputError(v.what, _explain(v.source, "the video stream holds no decodable frame "
                                                           "(empty, damaged or truncated)"))
        if reached_end or v.stream_duration_s is None:
            return
        declared = v.stream_duration_s
        if self.end_k is not None:
            declared = min(declared, float(Fraction(self.end_k) / self.rate))
        seen = max(0, self.end_seen) * float(v.time_base)
        slack = max(_TRUNCATION_SLACK_S, 3 / (v.nominal_fps or 30))
        if seen < declared - slack:
            raise BadInputError(v.what, _explain(
                v.source, f"the video can be read up to {seen:.2f} s only but its stream declares "
                          f"{v.stream_duration_s:.2f} s: the file is truncated or damaged ({info.frames_kept} frames "
                          f"before the cut were kept)"))


def sample_frames(source: str | os.PathLike[str] | BinaryIO, options: SamplingOptions, info: VideoInfo | None = None,
                  what: str = "video", *, start_s: float = 0.0, end_s: float | None = None) -> Iterator[SampledFrame]:
    """Open ``source`` and yield its sampled frames in order (see ``VideoFile.sample``)."""
    with VideoFile(source, what) as video:
        yield from video.sample(options, info, start_s=start_s, end_s=end_s)


def probe(source: str | os.PathLike[str] | BinaryIO, what: str = "video") -> VideoInfo:
    """Size, codec, duration and keyframe interval without decoding a frame."""
    with VideoFile(source, what) as video:
        return video.describe(VideoInfo())


__all__ = ["MAX_JPEG_BYTES", "SampledFrame", "SamplingOptions", "VideoFile", "VideoInfo", "encode_jpeg", "fit",
           "mp4_diagnosis", "probe", "sample_frames"]
