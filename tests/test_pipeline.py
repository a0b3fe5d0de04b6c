"""The whole chain on the embedded local AWS, entered through S3 as in the cloud."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vidsift import aws
from vidsift.cli import main as cli
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.results import analytics_rows
from vidsift.local.runner import run_videos
from vidsift.local.warehouse import run as query


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory, people_video: Path) -> dict[str, Path]:
    import av
    import numpy as np

    d = tmp_path_factory.mktemp("bad")
    zero = d / "zero.mp4"
    zero.write_bytes(b"")
    text = d / "readme.mp4"
    text.write_text("definitely not a video\n" * 20)
    cut = d / "cut.mp4"
    cut.write_bytes(people_video.read_bytes()[:20000])
    audio = d / "audio only.mp4"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return {"zero": zero, "text": text, "cut": cut, "audio": audio}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory, people_video: Path, short_video: Path,
              bad_inputs: dict[str, Path]):
    out = tmp_path_factory.mktemp("out")
    videos = [people_video, bad_inputs["zero"], short_video, bad_inputs["text"], bad_inputs["cut"],
              bad_inputs["audio"]]
    return run_videos(videos, out, camera_id="cam 7", recorded_at="2026-05-01T08:00:00Z", progress=False,
                      timeout_s=600)


def test_people_found_only_where_they_are(mixed_run) -> None:
    _, rows = query(mixed_run.out, "SELECT frame_index, person_count, camera_id, captured_at FROM people "
                                       "WHERE source_key LIKE '%people clip.mp4' ORDER BY frame_index")
    # 0-2 s coffee, 2-4 s astronaut, 4-6 s chelsea (the cat)
    assert [(r[0], r[1] > 0) for r in rows] == [(0, False), (1, False), (2, True), (3, True), (4, False),
                                                 (5, False)]
    assert rows[0][2] == "cam 7" and rows[3][3] == "2026-05-01T08:00:03.000Z"


def test_faces_found_once_per_visit(mixed_run) -> None:
    """Every visit (track) of a person whose face shows has its face found, on one of its own
    frames with people, and the faces rows name their visit."""
    _, rows = query(mixed_run.out, "SELECT t.video_id, t.track_id, any_value(t.faces), count(f.record_id), "
                                   "bool_and(p.person_count > 0) FROM tracks t JOIN faces f "
                                   "ON f.video_id = t.video_id AND f.track_id = t.track_id JOIN people p "
                                   "ON p.video_id = f.video_id AND p.frame_index = f.frame_index GROUP BY 1, 2")
    _, visits = query(mixed_run.out, "SELECT count(*) FROM tracks WHERE face_frames > 0")
    assert rows and len(rows) == visits[0][0]
    assert all(faces == n >= 1 and on_people for _, _, faces, n, on_people in rows)
    _, faces = query(mixed_run.out, "SELECT confidence, bbox_width, analyzer, eyeglasses FROM faces")
    assert all(c >= 80 and w > 0 and a and g is None for c, w, a, g in faces)


def test_each_bad_input_is_one_clear_error_and_the_rest_completes(mixed_run) -> None:
    by_name = {v.path.name: v for v in mixed_run.videos}
    assert by_name["people clip.mp4"].ok and by_name["short.mp4"].ok
    expect = {"zero.mp4": "empty", "readme.mp4": "not a readable video", "cut.mp4": "",
              "audio only.mp4": "no video stream"}
    for name, words in expect.items():
        v = by_name[name]
        assert not v.ok
        assert len(v.errors) == 1, v.errors
        assert words in v.errors[0]
    assert mixed_run.results.dlq == {}  # bad inputs are recorded once and acknowledged, not dead-lettered
    assert not mixed_run.ok
    assert (mixed_run.out / "run.json").exists()


def test_frames_with_people_are_kept(mixed_run) -> None:
    video = next(v for v in mixed_run.videos if v.path.name == "people clip.mp4").video_id
    kept = sorted(p.name for p in (mixed_run.out / "frames" / video).glob("*.jpg"))
    assert kept == ["000002.jpg", "000003.jpg"]


def test_query_formats(mixed_run, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT frame_index, person_count FROM people WHERE source_key LIKE '%short.mp4' ORDER BY 1"
    assert cli(["query", "--out", str(mixed_run.out), "--format", "json", sql]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["frame_index"] for r in doc] == [0, 1, 2]
    assert cli(["query", "--out", str(mixed_run.out), "--format", "csv", sql]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "frame_index,person_count"
    assert cli(["query", "--out", str(mixed_run.out), "SELECT nonsense FROM nowhere"]) == 2


def test_report_regenerates_from_stored_results(mixed_run) -> None:
    assert cli(["report", "--out", str(mixed_run.out)]) == 0
    html = (mixed_run.out / "report.html").read_text()
    assert "people clip.mp4" in html and "readme.mp4" in html


def test_cli_run_exits_non_zero_on_a_bad_input(tmp_path: Path, bad_inputs, capsys) -> None:
    """With --dedup: the summary names the bad file and its reason, gives each video its cost,
    and splits the DetectFaces saving into duplicates skipped and frames without people."""
    from test_frames import noisy_photo, write_clip

    # 6 s of one still scene (sensor noise only) at 1 frame/s: 6 sampled, 5 duplicates of the first.
    still = write_clip(tmp_path / "still.mp4", [i * 0.25 for i in range(24)], draw=noisy_photo("astronaut", 1))
    # S3 suffix filters are case-sensitive, in the cloud too: .mp4 and .MP4 are notified, .Mp4 is not.
    shouting = tmp_path / "Shouting.Mp4"
    shouting.write_bytes(still.read_bytes())
    assert cli(["run", str(still), str(bad_inputs["text"]), str(shouting), "--out", str(tmp_path / "out"),
                "--dedup", "--progress", "bars"]) == 1  # bars although capsys is no terminal
    captured = capsys.readouterr()
    out = captured.out
    # Progress per stage and per video (tqdm, on stderr): the good one done, the text file failed.
    progress = captured.err
    assert all(stage in progress for stage in ("split_frames", "detect_people", "analyze_faces"))
    assert re.search(r"still\.mp4 +: 100%.*1/1 .*done", progress), progress[-2000:]
    assert re.search(rf"{re.escape(bad_inputs['text'].name)} +:.*FAILED", progress)
    assert "Shouting.Mp4 FAILED" in " ".join(out.split()) and "not processed: the raw bucket notifies" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    row, bad = lines["still.mp4"], lines[bad_inputs["text"].name]
    assert row.split()[1:5] == ["ok", "6", "1", "1"] and re.search(r"\$\d", row)
    assert "FAILED" in bad
    assert "error: split_frames:" in out.split(bad_inputs["text"].name, 1)[1]
    assert "(83% avoided: 5 duplicates skipped, 0 frames without people)" in out


def test_replaying_every_event_adds_no_rows(local_stack, people_video: Path) -> None:
    """Send every stage its events again (the S3 notifications re-fire by re-copying each
    object onto itself): idempotency must leave the tables as they were."""
    stack = local_stack
    s3 = aws.client("s3")
    key = "uploads/replay/people clip.mp4"
    s3.upload_file(str(people_video), stack.names.bucket("raw"), key)
    dispatcher = Dispatcher(stack)
    assert dispatcher.run_until_idle(timeout_s=300)
    before = {t: sorted(r["record_id"] for r in analytics_rows(stack, t)) for t in ("people", "faces")}
    objects_before = len(s3.list_objects_v2(Bucket=stack.names.bucket("analytics"))["Contents"])
    assert before["people"] and before["faces"]
    for role in ("raw", "frames", "people"):
        bucket = stack.names.bucket(role)
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            if obj["Key"].endswith((".mp4", ".jpg")):
                meta = s3.head_object(Bucket=bucket, Key=obj["Key"])["Metadata"]
                s3.copy_object(Bucket=bucket, Key=obj["Key"], CopySource={"Bucket": bucket, "Key": obj["Key"]},
                               Metadata=meta, MetadataDirective="REPLACE")
    assert dispatcher.run_until_idle(timeout_s=300)
    after = {t: sorted(r["record_id"] for r in analytics_rows(stack, t)) for t in ("people", "faces")}
    assert after == before
    assert len(s3.list_objects_v2(Bucket=stack.names.bucket("analytics"))["Contents"]) == objects_before
