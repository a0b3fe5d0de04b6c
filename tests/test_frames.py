"""Frame sampling (vidsift.core.frames) on real H.264 clips written here with PyAV."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vidsift.core.errors import BadInputError
from vidsift.core.frames import SampledFrame, SamplingOptions, VideoFile, VideoInfo, encode_jpeg, sample_frames

W, H = 320, 240


def gray_frame(i: int) -> np.ndarray:
    """Frame i is a flat gray whose level encodes i, so a JPEG tells which frame it was."""
    return np.full((H, W, 3), 16 + (i * 10) % 224, np.uint8)


def level_of(jpeg: bytes) -> int:
    return round((float(np.asarray(Image.open(io.BytesIO(jpeg)).convert("L")).mean()) - 16) / 10)


def write_clip(path: Path, times: Sequence[float], *, draw: Callable[[int], np.ndarray] = gray_frame,
               tb: Fraction = Fraction(1, 1000), offset_s: float = 0.0, gop: int = 10, bframes: int = 0,
               rotation: int | None = None, fmt: str | None = None) -> Path:
    """An H.264 clip whose frame i is shown at ``offset_s + times[i]`` (any spacing: VFR)."""
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.time_base = s.codec_context.time_base = tb
        s.codec_context.gop_size = gop
        s.options = {"bf": str(bframes), "preset": "ultrafast"}
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(draw(i), format="rgb24")
            frame.pts = round((offset_s + t) / tb)
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def expected(times: Sequence[float], fps: float) -> list[tuple[int, int]]:
    """(index, frame number) the sampling rule picks, by its plain definition: the k-th sample
    is the first frame at or after k / fps, indexed floor(t * fps)."""
    picks, want = [], 0
    rate = Fraction(fps).limit_denominator(1_000_000)
    for n, t in enumerate(times):
        g = int(Fraction(t).limit_denominator(10**6) * rate)
        if g >= want:
            picks.append((g, n))
            want = g + 1
    return picks


def run(path: Path | str, options: SamplingOptions, **kw: float) -> tuple[list[SampledFrame], VideoInfo]:
    info = VideoInfo()
    frames = list(sample_frames(str(path), options, info, what=str(path), **kw))
    return frames, info


@pytest.fixture(scope="module")
def bframe_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s at 15 fps, keyframe every second, 3 B-frames: presentation order differs from
    decode order and keyframes' decode times from their presentation times."""
    times = [i / 15 for i in range(180)]
    return write_clip(tmp_path_factory.mktemp("b") / "bframes.mp4", times, tb=Fraction(1, 15), gop=15, bframes=3)


# --- the sampling rule -------------------------------------------------------------------


def test_one_frame_per_second(people_video: Path) -> None:
    frames, info = run(people_video, SamplingOptions(fps=1, strategy="sequential"))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4, 5]
    assert [f.time_s for f in frames] == pytest.approx([0, 1, 2, 3, 4, 5])
    assert info.frames_sampled == info.frames_kept == 6 and info.frames_decoded == 60
    assert all(f.jpeg[:3] == b"\xff\xd8\xff" for f in frames)
    assert (frames[0].width, frames[0].height) == (320, 240)


def test_fps_below_one(people_video: Path) -> None:
    frames, _ = run(people_video, SamplingOptions(fps=0.5))
    assert [(f.index, f.time_s) for f in frames] == [(0, 0.0), (1, 2.0), (2, 4.0)]


def test_keyframes_only_decodes_only_keyframes(people_video: Path) -> None:
    frames, info = run(people_video, SamplingOptions(keyframes=True))
    # a keyframe every 2 s; keyframes are indexed by their time in milliseconds
    assert [(f.index, f.time_s) for f in frames] == [(0, 0.0), (2000, 2.0), (4000, 4.0)]
    assert info.frames_decoded == 3 and info.strategy == "keyframes"


class _UnflaggedKeyframes:
    """A container whose demuxer flags no packet as a keyframe (some raw and odd streams)."""

    def __init__(self, container: av.container.InputContainer) -> None:
        self._c = container

    def demux(self, *args: object) -> object:
        for packet in self._c.demux(*args):
            packet.is_keyframe = False
            yield packet

    def __getattr__(self, name: str) -> object:
        return getattr(self._c, name)


def test_keyframes_only_without_flagged_keyframes(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "long-gop.mp4", [i * 0.02 for i in range(1400)], gop=500)
    with VideoFile(clip) as video:
        video.container = _UnflaggedKeyframes(video.container)  # type: ignore[assignment]
        frames = list(video.sample(SamplingOptions(keyframes=True)))
    assert [f.index for f in frames] == [0, 10000, 20000]  # the decoder still found them


def test_clip_shorter_than_interval_gives_one_frame(people_video: Path) -> None:
    frames, _ = run(people_video, SamplingOptions(fps=0.05))
    assert [(f.index, f.time_s) for f in frames] == [(0, 0.0)]


def test_single_frame_clip(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "one.mp4", [0.0])
    frames, _ = run(clip, SamplingOptions(fps=1))
    assert [(f.index, f.time_s) for f in frames] == [(0, 0.0)]


def test_variable_frame_rate(tmp_path: Path) -> None:
    times = [0, 0.04, 0.5, 0.52, 1.7, 1.75, 3.2, 3.24, 3.28, 5.0, 5.01, 7.9]
    clip = write_clip(tmp_path / "vfr.mp4", times)
    for fps in (2, 1, 0.4):
        for strategy in ("sequential", "seek"):
            frames, _ = run(clip, SamplingOptions(fps=fps, strategy=strategy))
            want = expected(times, fps)
            assert [f.index for f in frames] == [g for g, _ in want], (fps, strategy)
            assert [f.time_s for f in frames] == pytest.approx([times[n] for _, n in want])
            assert [level_of(f.jpeg) for f in frames] == [n for _, n in want]  # the right pictures


@pytest.mark.parametrize("fmt,suffix", [(None, "mp4"), ("matroska", "mkv"), ("mpegts", "ts")])
def test_stream_not_starting_at_zero(tmp_path: Path, fmt: str | None, suffix: str) -> None:
    times = [i * 0.25 for i in range(16)]
    clip = write_clip(tmp_path / f"late.{suffix}", times, offset_s=7.5, fmt=fmt)
    with av.open(str(clip)) as c:
        assert float(c.streams.video[0].start_time * c.streams.video[0].time_base) >= 7.4  # the premise
    frames, _ = run(clip, SamplingOptions(fps=1))
    assert [(f.index, f.time_s) for f in frames] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    assert [level_of(f.jpeg) for f in frames] == [0, 4, 8, 12]


# --- seeking past what no sample needs gives exactly what sequential decoding gives -------------


@pytest.mark.parametrize("fps", [0.3, 0.5, 1.0, 2.0, 4.0])
def test_seek_based_equals_sequential(bframe_clip: Path, fps: float) -> None:
    seq, seq_info = run(bframe_clip, SamplingOptions(fps=fps, strategy="sequential"))
    seek, seek_info = run(bframe_clip, SamplingOptions(fps=fps, strategy="seek"))
    assert [(f.index, f.time_s) for f in seek] == [(f.index, f.time_s) for f in seq]
    assert [f.jpeg for f in seek] == [f.jpeg for f in seq]  # bit-identical pictures too
    assert seq_info.frames_decoded == 180 and seq_info.packets_skipped == 0
    if fps <= 2:  # samples leave stretches of GOPs unused: those were dropped or seeked past
        assert seek_info.frames_decoded < 180 and (seek_info.packets_skipped > 0 or seek_info.seeks > 0)
    if fps == 1:  # jumps within two GOPs drop packets instead of seeking (no decoder flush)
        assert seek_info.seeks == 0 and seek_info.frames_decoded == 180 - seek_info.packets_skipped


def test_seek_based_equals_sequential_on_vfr_with_bframes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.uniform(0.01, 0.3, size=120)).round(3).tolist()
    clip = write_clip(tmp_path / "vfr-b.mp4", times, gop=12, bframes=2)
    for fps in (0.2, 0.7, 1.3):
        seq, _ = run(clip, SamplingOptions(fps=fps, strategy="sequential"))
        seek, info = run(clip, SamplingOptions(fps=fps, strategy="seek"))
        assert [(f.index, f.time_s, f.jpeg) for f in seek] == [(f.index, f.time_s, f.jpeg) for f in seq]
        assert [f.index for f in seq] == [g for g, _ in expected(times, fps)]
        assert info.frames_decoded < len(times) or fps > 1  # the sparse rates did skip


@pytest.mark.parametrize("shift_frames,fps", [(-7, 1.5), (-1, 1.0), (1, 1.0), (7, 2.0), (20, 1.0)])
def test_a_wrong_keyframe_index_costs_time_not_frames(bframe_clip: Path, shift_frames: int, fps: float) -> None:
    """Skipping trusts the index only as far as the packets confirm it: a keyframe estimate
    that is off ends in a verified seek (or in decoding on), never in a missed or wrong sample."""
    with VideoFile(bframe_clip) as video:
        want = [(f.index, f.time_s, f.jpeg) for f in video.sample(SamplingOptions(fps=fps, strategy="sequential"))]
    with VideoFile(bframe_clip) as video:
        step = int(1 / (15 * video.time_base))
        video.keyframe_ticks = [max(0, t + shift_frames * step) for t in video.keyframe_ticks]
        info = VideoInfo()
        got = [(f.index, f.time_s, f.jpeg) for f in video.sample(SamplingOptions(fps=fps, strategy="seek"), info)]
    assert got == want
    if shift_frames == -7:  # keyframes thought 7 frames early: dropping overshot the 0.67 s sample, and it seeked
        assert info.seeks > 0


def test_auto_seeks_for_sparse_samples_and_decodes_all_for_dense(bframe_clip: Path) -> None:
    with VideoFile(bframe_clip) as video:
        # keyframe presentation times from the index (which holds decode times, 2 frames earlier)
        assert [float(t * video.time_base) for t in video.keyframe_ticks[:3]] == [0, 1, 2]
        assert video.choose_strategy(SamplingOptions(fps=0.5)) == "seek"
        assert video.choose_strategy(SamplingOptions(fps=15)) == "sequential"
        assert video.choose_strategy(SamplingOptions(keyframes=True)) == "keyframes"


def test_no_index_falls_back_to_sequential(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "noindex.ts", [i * 0.1 for i in range(40)], fmt="mpegts")
    frames, info = run(clip, SamplingOptions(fps=1, strategy="seek"))
    assert info.strategy == "sequential" and [f.index for f in frames] == [0, 1, 2, 3]


def test_one_file_sampled_twice(bframe_clip: Path) -> None:
    with VideoFile(bframe_clip) as video:
        a = [(f.index, f.jpeg) for f in video.sample(SamplingOptions(fps=1))]
        b = [(f.index, f.jpeg) for f in video.sample(SamplingOptions(fps=1, strategy="sequential"))]
    assert a == b and len(a) == 12


# --- pictures ------------------------------------------------------------------------------


def marker(i: int) -> np.ndarray:
    """A white block in the top-left corner: where it lands tells the orientation."""
    img = np.full((H, W, 3), 40, np.uint8)
    img[:40, :80] = 255
    return img


@pytest.mark.parametrize("rotation,size,corner", [
    (90, (240, 320), "bottom-left"),   # 90 degrees counter-clockwise, like ffmpeg's autorotate
    (-90, (240, 320), "top-right"),
    (180, (320, 240), "bottom-right"),
    (0, (320, 240), "top-left"),
])
def test_rotation_metadata_is_applied(tmp_path: Path, rotation: int, size: tuple[int, int], corner: str) -> None:
    clip = write_clip(tmp_path / f"rot{rotation}.mp4", [0, 0.5, 1.0], draw=marker, rotation=rotation)
    info = VideoInfo()
    frames = list(sample_frames(str(clip), SamplingOptions(fps=1), info))
    img = np.asarray(Image.open(io.BytesIO(frames[0].jpeg)).convert("L"))
    assert (frames[0].width, frames[0].height) == size == (img.shape[1], img.shape[0])
    h, w = img.shape
    corners = {"top-left": img[: h // 8, : w // 8], "top-right": img[: h // 8, -w // 8 :],
               "bottom-left": img[-h // 8 :, : w // 8], "bottom-right": img[-h // 8 :, -w // 8 :]}
    assert {k for k, v in corners.items() if v.mean() > 200} == {corner}
    assert info.rotation == rotation % 360


def test_rotation_matches_ffmpeg(tmp_path: Path) -> None:
    """The ffmpeg command (autorotate on by default) is the reference for what a viewer shows."""
    import subprocess

    import imageio_ffmpeg

    clip = write_clip(tmp_path / "rot.mp4", [0.0], draw=marker, rotation=90)
    ref = tmp_path / "ref.png"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(clip), "-frames:v", "1", str(ref)],
                   check=True)
    ours = np.asarray(Image.open(io.BytesIO(next(sample_frames(str(clip), SamplingOptions())).jpeg)).convert("L"))
    theirs = np.asarray(Image.open(ref).convert("L"))
    assert ours.shape == theirs.shape
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 4


def test_max_side_is_respected(people_video: Path) -> None:
    frames, _ = run(people_video, SamplingOptions(fps=1, max_side=100))
    assert max(frames[0].width, frames[0].height) == 100
    assert Image.open(io.BytesIO(frames[0].jpeg)).size == (frames[0].width, frames[0].height)


def test_no_jpeg_over_the_byte_limit() -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8))
    jpeg = encode_jpeg(noise, 95, max_bytes=40_000)
    assert len(jpeg) <= 40_000
    assert Image.open(io.BytesIO(jpeg)).size[0] < 1280  # quality alone could not get there


# --- near-duplicates --------------------------------------------------------------------------


def noisy_photo(name: str, seed: int) -> Callable[[int], np.ndarray]:
    from vidsift.testing.samples import _fit, photo

    base = _fit(photo(name), W, H).astype(np.int16)
    rng = np.random.default_rng(seed)
    return lambda i: np.clip(base + rng.integers(-10, 11, size=base.shape), 0, 255).astype(np.uint8)


def test_dedup_skips_a_static_scene(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "static.mp4", [i * 0.25 for i in range(24)], draw=noisy_photo("coffee", 1))
    frames, info = run(clip, SamplingOptions(fps=1, dedup_distance=6))
    assert [f.index for f in frames] == [0]
    assert (info.frames_sampled, info.frames_kept, info.duplicates_skipped) == (6, 1, 5)
    frames, info = run(clip, SamplingOptions(fps=1))
    assert len(frames) == 6 and info.duplicates_skipped == 0


def test_dedup_keeps_every_change(tmp_path: Path) -> None:
    coffee, rocket = noisy_photo("coffee", 1), noisy_photo("astronaut", 2)
    clip = write_clip(tmp_path / "cut.mp4", [i * 0.25 for i in range(24)],
                      draw=lambda i: coffee(i) if i < 8 or i >= 16 else rocket(i))
    frames, info = run(clip, SamplingOptions(fps=1, dedup_distance=6))
    # coffee 0-2 s, astronaut 2-4 s, coffee again 4-6 s: compared with the last *kept* frame
    assert [f.index for f in frames] == [0, 2, 4] and info.duplicates_skipped == 3


# --- bad input -------------------------------------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(BadInputError, match=r"empty\.mp4.*0 bytes"):
        list(sample_frames(str(p), SamplingOptions(), what=str(p)))


def test_text_file_named_mp4(tmp_path: Path) -> None:
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    with pytest.raises(BadInputError, match="not a readable video"):
        list(sample_frames(str(p), SamplingOptions(), what=str(p)))


def test_truncated_mp4(people_video: Path, tmp_path: Path) -> None:
    data = people_video.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match="truncated"):
        list(sample_frames(str(p), SamplingOptions(), what=str(p)))


def test_audio_only_file(tmp_path: Path) -> None:
    p = tmp_path / "audio.mp4"
    with av.open(str(p), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    with pytest.raises(BadInputError, match="no video stream"):
        list(sample_frames(str(p), SamplingOptions(), what=str(p)))


def test_options_are_validated() -> None:
    for bad in ({"fps": 0}, {"fps": float("nan")}, {"jpeg_quality": 0}, {"dedup_distance": 65},
                {"strategy": "fast"}, {"max_bytes": 100}):
        with pytest.raises(ValueError):
            SamplingOptions(**bad)  # type: ignore[arg-type]


# --- the command ------------------------------------------------------------------------------


def test_frames_command(people_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from vidsift.cli import main

    out = tmp_path / "out"
    assert main(["frames", str(people_video), "--out", str(out), "--fps", "0.5", "--max-side", "160"]) == 0
    assert sorted(p.name for p in out.glob("*.jpg")) == ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert Image.open(out / "000001.jpg").size == (160, 120)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_kept"] == 3 and summary["strategy"] in ("seek", "sequential")
    # the same frames split_frames would write, under the same indices
    assert (out / "000001.jpg").read_bytes() == run(people_video, SamplingOptions(fps=0.5, max_side=160))[0][1].jpeg
    keys = tmp_path / "keys"
    assert main(["frames", str(people_video), "--out", str(keys), "--keyframes", "--dedup"]) == 0
    assert sorted(p.name for p in keys.glob("*.jpg")) == ["000000.jpg", "002000.jpg", "004000.jpg"]
    assert "3 frames kept of 3 sampled, 0 near-duplicates skipped" in capsys.readouterr().out


def test_frames_command_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vidsift.cli import main

    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 20)
    assert main(["frames", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "not a readable video container" in capsys.readouterr().err
    assert main(["frames", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o")]) == 2
