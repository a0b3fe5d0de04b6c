from pathlib import Path

import pytest

from vidsift.core.errors import BadInputError
from vidsift.core.frames import SamplingOptions, VideoInfo, sample_frames


def test_one_frame_per_second(people_video: Path) -> None:
    info = VideoInfo()
    frames = list(sample_frames(str(people_video), SamplingOptions(fps=1), info))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4, 5]
    assert [f.time_s for f in frames] == pytest.approx([0, 1, 2, 3, 4, 5])
    assert info.frames_sampled == 6 and info.frames_decoded == 60
    assert all(f.jpeg[:3] == b"\xff\xd8\xff" for f in frames)
    assert (frames[0].width, frames[0].height) == (320, 240)


def test_fps_below_one(people_video: Path) -> None:
    frames = list(sample_frames(str(people_video), SamplingOptions(fps=0.5)))
    assert [(f.index, f.time_s) for f in frames] == [(0, 0.0), (1, 2.0), (2, 4.0)]


def test_keyframes_only_decodes_less(people_video: Path) -> None:
    info = VideoInfo()
    frames = list(sample_frames(str(people_video), SamplingOptions(keyframes=True), info))
    assert frames and frames[0].time_s == 0
    assert info.frames_decoded == len(frames) < 60


def test_clip_shorter_than_interval_gives_one_frame(people_video: Path) -> None:
    frames = list(sample_frames(str(people_video), SamplingOptions(fps=0.05)))
    assert [f.index for f in frames] == [0]


def test_max_side_is_respected(people_video: Path) -> None:
    frames = list(sample_frames(str(people_video), SamplingOptions(fps=1, max_side=100)))
    assert max(frames[0].width, frames[0].height) == 100


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(BadInputError, match=r"empty\.mp4"):
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
    with pytest.raises(BadInputError):
        list(sample_frames(str(p), SamplingOptions(), what=str(p)))


def test_audio_only_file(tmp_path: Path) -> None:
    import av
    import numpy as np

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
