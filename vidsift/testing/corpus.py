"""A corpus of awkward inputs for split_frames, built in a second from one small video.

Why a builder and not files in the repo: every case is a precise edit of a known-good MP4
(cut inside a named box, a codec tag patched, a duration zeroed), so what each file is
stays readable in code, and nothing binary is committed. Each case says what the pipeline
must do with it: complete with a known number of frames (and of frames with people), or
end in one clear error whose reason contains ``words``.

Names are the files' names, kept by ``vidsift run`` in the S3 key: several carry spaces,
``+`` and non-ASCII characters on purpose (S3 URL-encodes them in notifications).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vidsift.testing.samples import Segment, make_video

#: The base video: one second of each photo at 1 sample/s gives frames 0 (person), 1 (none), 2 (person).
BASE_SEGMENTS = (Segment("astronaut", 1), Segment("coffee", 1), Segment("grace_hopper", 1))
BASE_FRAMES = 3
BASE_PERSON_FRAMES = 2
#: Codecs FFmpeg can name but PyAV's build cannot decode: the first one without a decoder is used.
UNDECODABLE = (("evc", b"evc1"), ("avs3", b"avs3"))
#: Every case's name, in build order (tests parametrise over them before the files exist).
NAMES = ("zero bytes.mp4", "notes+todo.mp4", "cut in ftyp.mp4", "cut in moov (faststart).mp4",
         "cut in mdat (faststart).mp4", "cut in mdat (moov last).mp4", "cut in moov (moov last).mp4",
         "moov last.mp4", "faststart.mp4", "audio only.mp4", "undecodable codec.mp4", "garbage avcC.mp4",
         "8k plus.mp4", "zero duration.mp4", "no samples.mp4", "one frame.mp4", "café ☕ 東京 + more.mp4")


@dataclass(frozen=True)
class Case:
    """One input and what must become of it."""

    name: str
    path: Path
    #: Frames sampled at 1 fps when the input is fine; None when it must fail.
    frames: int | None = None
    person_frames: int | None = None
    #: Words the one error's reason must contain when it must fail.
    words: str = ""
    #: A failing input may still have produced the frames before a cut (they are kept).
    partial: bool = False

    @property
    def ok(self) -> bool:
        """Whether the pipeline must complete this input (a known frame count) rather than refuse it."""
        return self.frames is not None


def top_boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """Top-level MP4 boxes: name -> (offset, size)."""
    out, pos = {}, 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size < 8:
            break
        out[data[pos + 4 : pos + 8].decode("latin-1")] = (pos, size)
        pos += size
    return out


def _cut(data: bytes, box: str, fraction: float) -> bytes:
    offset, size = top_boxes(data)[box]
    return data[: offset + max(1, int(size * fraction))]


def _patch_fourcc(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace the video sample entry's codec tag (the one inside ``stsd``, not the brand in ``ftyp``)."""
    at = data.find(old, data.find(b"stsd"))
    assert at > 0, f"no {old!r} sample entry"
    return data[:at] + new + data[at + 4 :]


def _zero_durations(data: bytes) -> bytes:
    """Declared durations (mvhd, tkhd, mdhd; version 0 boxes) set to 0; the frames stay."""
    out = bytearray(data)
    for box, offset in ((b"mvhd", 20), (b"tkhd", 24), (b"mdhd", 20)):
        at = out.find(box)
        assert at > 0 and out[at + 4] == 0, f"{box!r} missing or not version 0"
        out[at + offset : at + offset + 4] = b"\0\0\0\0"
    return bytes(out)


def _no_samples(data: bytes) -> bytes:
    """The video track kept, its sample table emptied (stsz sample_count = 0)."""
    out = bytearray(data)
    at = out.find(b"stsz")
    out[at + 12 : at + 16] = b"\0\0\0\0"
    return bytes(out)


def _garbage_parameters(data: bytes) -> bytes:
    """The H.264 parameter sets (avcC) overwritten: the codec is known, nothing decodes."""
    out = bytearray(data)
    at = out.find(b"avcC")
    out[at + 8 : at + 30] = b"\xab" * 22
    return bytes(out)


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return path


def _huge(path: Path, width: int = 7696, height: int = 4336) -> Path:
    """One black frame over the 8K pixel cap (7680x4320): a 100 KB file that would decode to 50 MB."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        frame.pts = 0
        for pkt in [*stream.encode(frame), *stream.encode()]:
            out.mux(pkt)
    return path


def _faststart(src: Path, dst: Path) -> Path:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-c", "copy",
                    "-movflags", "+faststart", str(dst)], check=True)
    return dst


def undecodable_tag() -> tuple[str, bytes]:
    """A codec FFmpeg's MP4 demuxer knows by its tag while this PyAV build has no decoder for it."""
    for codec, tag in UNDECODABLE:
        try:
            av.Codec(codec, "r")
        except Exception:  # UnknownCodecError: no decoder in this build
            return codec, tag
    raise RuntimeError(f"every candidate codec decodes here ({', '.join(c for c, _ in UNDECODABLE)}): add one")


def build(folder: Path) -> list[Case]:
    """Write the corpus into ``folder`` and return its cases (about 1 MB, about a second)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = make_video(folder / "base.mp4", BASE_SEGMENTS, fps=10, width=320, height=240)
    fast = _faststart(base, folder / "base-faststart.mp4")
    moov_last, faststart = base.read_bytes(), fast.read_bytes()
    assert list(top_boxes(moov_last)).index("moov") > list(top_boxes(moov_last)).index("mdat")
    assert list(top_boxes(faststart)).index("moov") < list(top_boxes(faststart)).index("mdat")
    _, tag = undecodable_tag()

    def write(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    ok = {"frames": BASE_FRAMES, "person_frames": BASE_PERSON_FRAMES}
    cases = [
        Case("zero bytes.mp4", write("zero bytes.mp4", b""), words="empty (0 bytes)"),
        Case("notes+todo.mp4", write("notes+todo.mp4", b"not a video, just text\n" * 40),
             words="not a readable video container"),
        Case("cut in ftyp.mp4", write("cut in ftyp.mp4", moov_last[:12]), words="not a readable video container"),
        Case("cut in moov (faststart).mp4", write("cut in moov (faststart).mp4", _cut(faststart, "moov", 0.5)),
             words="truncated"),
        Case("cut in mdat (faststart).mp4", write("cut in mdat (faststart).mp4", _cut(faststart, "mdat", 0.6)),
             words="truncated", partial=True),
        Case("cut in mdat (moov last).mp4", write("cut in mdat (moov last).mp4", _cut(moov_last, "mdat", 0.5)),
             words="truncated"),
        Case("cut in moov (moov last).mp4", write("cut in moov (moov last).mp4", _cut(moov_last, "moov", 0.5)),
             words="truncated"),
        Case("moov last.mp4", write("moov last.mp4", moov_last), **ok),
        Case("faststart.mp4", write("faststart.mp4", faststart), **ok),
        Case("audio only.mp4", _audio_only(folder / "audio only.mp4"), words="no video stream"),
        Case("undecodable codec.mp4", write("undecodable codec.mp4", _patch_fourcc(moov_last, b"avc1", tag)),
             words="codec is not supported"),
        Case("garbage avcC.mp4", write("garbage avcC.mp4", _garbage_parameters(moov_last)),
             words="no decodable frame"),
        Case("8k plus.mp4", _huge(folder / "8k plus.mp4"), words="pixel cap"),
        Case("zero duration.mp4", write("zero duration.mp4", _zero_durations(moov_last)), **ok),
        Case("no samples.mp4", write("no samples.mp4", _no_samples(moov_last)), words="no decodable frame"),
        Case("one frame.mp4", make_video(folder / "one frame.mp4", [Segment("astronaut", 0.1)], fps=10, width=320,
                                         height=240), frames=1, person_frames=1),
        Case("café ☕ 東京 + more.mp4", write("café ☕ 東京 + more.mp4", moov_last), **ok),
    ]
    assert tuple(c.name for c in cases) == NAMES
    return cases
