"""Truncated MP4s end in one clear BadInputError, wherever they were cut; complete MP4s work
whether their index (moov) comes first (faststart) or last (as cameras and ffmpeg write)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from vidsift.core.errors import BadInputError
from vidsift.core.frames import SampledFrame, SamplingOptions, VideoInfo, mp4_diagnosis, sample_frames


def boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """Top-level MP4 boxes: name -> (offset, size)."""
    out, pos = {}, 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        out[data[pos + 4 : pos + 8].decode("latin-1")] = (pos, size)
        pos += size
    return out


@pytest.fixture(scope="module")
def layouts(people_video: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import imageio_ffmpeg

    d = tmp_path_factory.mktemp("layouts")
    faststart = d / "faststart.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(people_video), "-c", "copy",
                    "-movflags", "+faststart", str(faststart)], check=True)
    return {"moov-last": people_video, "faststart": faststart}


def collect(path: Path, options: SamplingOptions | None = None) -> tuple[list[SampledFrame], BadInputError | None]:
    frames: list[SampledFrame] = []
    try:
        for f in sample_frames(str(path), options or SamplingOptions(fps=1), VideoInfo(), what=path.name):
            frames.append(f)
    except BadInputError as exc:
        return frames, exc
    return frames, None


def test_both_layouts_are_valid(layouts: dict[str, Path]) -> None:
    order = {name: list(boxes(p.read_bytes())) for name, p in layouts.items()}
    assert order["moov-last"].index("moov") > order["moov-last"].index("mdat")  # the premise
    assert order["faststart"].index("moov") < order["faststart"].index("mdat")
    results = {name: collect(p) for name, p in layouts.items()}
    for frames, error in results.values():
        assert error is None and [f.index for f in frames] == [0, 1, 2, 3, 4, 5]
    assert [f.jpeg for f in results["faststart"][0]] == [f.jpeg for f in results["moov-last"][0]]
    assert all(mp4_diagnosis(p) is None for p in layouts.values())


@pytest.mark.parametrize("layout", ["moov-last", "faststart"])
@pytest.mark.parametrize("box", ["ftyp", "moov", "mdat"])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_cut_anywhere_is_one_clear_error(layouts: dict[str, Path], tmp_path: Path, layout: str, box: str,
                                         fraction: float) -> None:
    data = layouts[layout].read_bytes()
    offset, size = boxes(data)[box]
    cut = tmp_path / f"{layout}-{box}-{fraction}.mp4"
    cut.write_bytes(data[: offset + max(1, int(size * fraction))])
    frames, error = collect(cut)
    assert error is not None, f"{cut.name}: {len(frames)} frames and no error"
    assert error.what == cut.name
    assert "truncated" in error.reason, error.reason
    if layout == "faststart" and box == "mdat" and fraction == 0.9:
        assert len(frames) >= 4  # the frames before the cut still came out first


def test_cut_on_a_packet_boundary_is_noticed(layouts: dict[str, Path], tmp_path: Path) -> None:
    """FFmpeg stops without an error when the file ends exactly between two frames; the
    stream's declared duration tells it was cut."""
    data = layouts["faststart"].read_bytes()
    with av.open(str(layouts["faststart"])) as c:
        entry = c.streams.video[0].index_entries[35]  # frame 35 of 60 starts here
    cut = tmp_path / "boundary.mp4"
    cut.write_bytes(data[: entry.pos])
    frames, error = collect(cut, SamplingOptions(fps=1, strategy="sequential"))
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert error is not None and "up to 3.50 s only" in error.reason and "declares 6.00 s" in error.reason
    frames, error = collect(cut, SamplingOptions(fps=1, strategy="seek"))  # seeks into the missing part
    assert [f.index for f in frames] == [0, 1, 2, 3] and error is not None and "truncated" in error.reason


def test_diagnosis_names_the_cut_box(layouts: dict[str, Path], tmp_path: Path) -> None:
    data = layouts["moov-last"].read_bytes()
    cut = tmp_path / "nomoov.mp4"
    offset, _ = boxes(data)["moov"]
    cut.write_bytes(data[:offset])
    assert "no 'moov' box" in (mp4_diagnosis(cut) or "")
    cut.write_bytes(data[: offset + 100])
    assert "'moov' box needs" in (mp4_diagnosis(cut) or "")
    assert mp4_diagnosis(__file__) is None  # not an MP4 at all
