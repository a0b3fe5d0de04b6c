"""The report and the cost estimate, from hand-made results folders (tests/test_report_fixture.py).

Expected costs are worked out here from the fixture's numbers and the prices file, step
by step as the README explains the model, not read back from the code.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import io
import itertools
import json
import math
import re
import sys
from pathlib import Path

import pytest
from PIL import Image
from test_report_fixture import (
    NASTY_NAME,
    Face,
    FixtureVideo,
    Frame,
    Track,
    parse,
    stages,
    tracked_video,
    two_videos,
    write_results,
)

from vidsift.report import REPORT_NAME, cost_summary_line, write_report
from vidsift.report import cost as costs
from vidsift.report.cli import add_parser
from vidsift.report.data import load
from vidsift.report.render import render

ROOT = Path(__file__).resolve().parents[1]
PRICES = json.loads((ROOT / "vidsift" / "report" / "prices.json").read_text())["prices"]


def price(key: str) -> float:
    p = PRICES[key]
    return p["usd"] / p.get("per", 1)


# ------------------------------------------------------------------ cost model


@pytest.fixture
def two(tmp_path: Path) -> Path:
    return write_results(tmp_path / "out", two_videos())


def test_cost_lines_from_the_fixture_run(two: Path) -> None:
    total, per_video = costs.run_estimates(load(two))
    got = {line.component: line for line in total.lines}
    # Lambda: seconds × memory. split 3 s × 2 GB, detect 8 s × 0.5 GB, analyze 6 s × 0.5 GB.
    assert got["Lambda split_frames"].quantity == pytest.approx(6.0)
    assert got["Lambda detect_people"].quantity == pytest.approx(4.0)
    assert got["Lambda analyze_faces"].quantity == pytest.approx(3.0)
    assert got["Lambda detect_people"].usd == pytest.approx(4.0 * price("lambda_gb_second"))
    # split_frames' 1024 MB ephemeral storage: 512 MB above the free 512, for 3 s.
    assert got["Lambda ephemeral storage"].quantity == pytest.approx(0.5 * 3.0)
    assert got["Lambda requests"].quantity == pytest.approx(2 + 5 + 3)
    assert got["Lambda requests"].usd == pytest.approx(10 * 0.20 / 1e6)
    # SageMaker: 40 frames kept × (8 s of detect_people / 40 frames) at 4096 MB.
    sm = PRICES["sagemaker_serverless_second"]["usd_by_memory_mb"]["4096"]
    assert got["SageMaker serverless inference"].quantity == pytest.approx(40 * 8.0 / 40)
    assert got["SageMaker serverless inference"].usd == pytest.approx(8.0 * sm)
    # DetectFaces: one per frame with people (9 + 3).
    assert got["Rekognition DetectFaces"].quantity == 12
    assert got["Rekognition DetectFaces"].usd == pytest.approx(12 * 0.001)
    # Firehose: 40 people rows + 12 face rows, each under 5 KB, so 52 × 5 KB billed.
    assert got["Firehose ingestion"].quantity == pytest.approx(52 * 5120 / 2**30)
    assert total.usage.firehose_records == 52
    assert 52 * 200 < total.usage.firehose_bytes < 52 * 5120
    # S3 PUT/COPY: per video 1 upload + frames + 1 summary + frames with people (COPY).
    assert got["S3 PUT/COPY"].quantity == (1 + 30 + 1 + 9) + (1 + 10 + 1 + 3)
    # S3 GET/HEAD: 1 HEAD + ceil(bytes/4 MiB) range GETs + 2 per frame + 2 per frame with people.
    assert got["S3 GET/HEAD"].quantity == (1 + 3 + 60 + 18) + (1 + 1 + 20 + 6)
    assert got["S3 GET/HEAD"].usd == pytest.approx(110 * 0.0004 / 1000)
    # SQS: a send per event (1 + frames + frames with people) and 2 per invocation.
    assert got["SQS"].quantity == pytest.approx((1 + 30 + 9) + (1 + 10 + 3) + 2 * 10)
    assert got["DynamoDB writes"].quantity == 2 * ((1 + 30 + 9) + (1 + 10 + 3))
    assert total.total == pytest.approx(sum(line.usd for line in total.lines))
    assert total.complete
    # Per video minute: 80 s of video.
    assert total.video_minutes == pytest.approx(80 / 60)
    assert total.per_minute == pytest.approx(total.total / (80 / 60))
    # Per video shares add up to the run, line by line.
    for i, line in enumerate(total.lines):
        assert sum(e.lines[i].usd for e in per_video) == pytest.approx(line.usd)
    a, b = ({line.component: line for line in e.lines} for e in per_video)
    # split_frames is shared by each video's own split time (2 s : 1 s), detect_people by frames (30 : 10),
    # analyze_faces by DetectFaces calls (9 : 3).
    assert a["Lambda split_frames"].quantity == pytest.approx(4.0) and b["Lambda split_frames"].quantity == \
        pytest.approx(2.0)
    assert a["Lambda detect_people"].quantity == pytest.approx(3.0) and b["Lambda detect_people"].quantity == \
        pytest.approx(1.0)
    assert a["Lambda analyze_faces"].quantity == pytest.approx(6.0 * 9 / 12 * 0.5)
    # A run from before the tracker: no track_people stage, nothing billed for it.
    assert got["Lambda track_people"].quantity == 0 and got["Lambda track_people"].usd == 0


def test_alternatives_and_the_measured_saving(two: Path) -> None:
    total, (a, b) = costs.run_estimates(load(two))
    # Sampled before dedup: A 40 (10 of them duplicates), B 10; DetectFaces was called 12 times.
    assert total.usage.frames_sampled == 50 and total.usage.frames_kept == 40
    assert total.every_frame_detect_faces == pytest.approx(50 * 0.001)
    assert total.detect_faces_avoided == 38
    # ...10 of them by skipping duplicates (A), 28 by the person filter (A 30 - 9, B 10 - 3).
    assert total.avoided_by_dedup == 10 and total.avoided_by_person_filter == 28
    assert (a.avoided_by_dedup, a.avoided_by_person_filter) == (10, 21)
    assert total.avoided_ratio == pytest.approx(38 / 50)
    assert a.avoided_ratio == pytest.approx(31 / 40) and b.avoided_ratio == pytest.approx(7 / 10)
    assert total.rekognition_video == pytest.approx(80 / 60 * 0.10)
    assert a.rekognition_video == pytest.approx(1.0 * 0.10)


def test_the_endpoint_time_is_used_when_the_run_recorded_it(tmp_path: Path) -> None:
    out = write_results(tmp_path, two_videos(), endpoint={"invocations": 4, "frames": 40, "seconds": 2.0})
    total, _ = costs.run_estimates(load(out))
    line = next(x for x in total.lines if x.component.startswith("SageMaker"))
    assert line.quantity == pytest.approx(40 * 2.0 / 40)


def test_stage_memory_comes_from_the_run_record(tmp_path: Path) -> None:
    out = write_results(tmp_path, two_videos(), run_stages=stages(memory={"detect_people": 1024}))
    total, _ = costs.run_estimates(load(out))
    assert next(x for x in total.lines if x.component == "Lambda detect_people").quantity == pytest.approx(8.0)


def test_prices_come_from_the_prices_file(two: Path, tmp_path: Path) -> None:
    doc = json.loads(costs.PRICES_PATH.read_text())
    doc["prices"]["rekognition_detect_faces_image"]["usd"] = 0.002
    doc["prices"]["lambda_request"]["usd"] = 0.40
    edited = tmp_path / "prices.json"
    edited.write_text(json.dumps(doc))
    base, _ = costs.run_estimates(load(two))
    dear, _ = costs.run_estimates(load(two), costs.load_prices(edited))
    def requests(e: costs.Estimate) -> float:
        return next(line.usd for line in e.lines if line.component == "Lambda requests")

    assert requests(dear) == pytest.approx(2 * requests(base))
    assert dear.every_frame_detect_faces == pytest.approx(2 * base.every_frame_detect_faces)
    assert dear.total - base.total == pytest.approx(12 * 0.001 + 10 * 0.20 / 1e6)


def test_prices_name_their_source_and_date() -> None:
    prices = costs.load_prices()
    assert prices.region == "us-east-1"
    for p in prices.items.values():
        assert p.source.startswith("https://aws.amazon.com/"), p
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", p.as_of), p
        assert p.usd > 0 and p.what
    assert prices["lambda_gb_second"].label() == "$0.0000166667 per GB-second"
    assert prices["s3_put_request"].label() == "$0.005 per 1,000 requests"
    assert prices["lambda_request"].label() == "$0.20 per 1M requests"


def test_sagemaker_memory_is_what_deploy_configures() -> None:
    name = "vidsift_report_test_deploy"
    spec = importlib.util.spec_from_file_location(name, ROOT / "sagemaker" / "deploy.py")
    assert spec and spec.loader
    deploy = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    assert deploy.parser().parse_args([]).memory_mb == costs.SAGEMAKER_MEMORY_MB
    assert costs.SAGEMAKER_MEMORY_MB in costs.load_prices().sagemaker_by_memory


def test_without_run_json_lambda_and_sagemaker_are_unknown_not_zero(tmp_path: Path) -> None:
    out = write_results(tmp_path, two_videos(), run_json=False)
    data = load(out)
    assert [v.file for v in data.videos] == ["a.mp4", "b.mp4"]  # from the summaries' keys
    total, _ = costs.run_estimates(data)
    by = {line.component: line for line in total.lines}
    assert by["Lambda split_frames"].usd is None and by["SageMaker serverless inference"].usd is None
    assert by["Rekognition DetectFaces"].usd == pytest.approx(0.012)
    assert not total.complete
    assert "no run.json" in costs.summary_line(total)


def test_money_formatting() -> None:
    assert costs.usd(0) == "$0"
    assert costs.usd(12.345) == "$12.35"
    assert costs.usd(0.0123456) == "$0.0123"
    assert costs.usd(0.000045678) == "$0.0000457"
    assert costs.usd(None) == "n/a"


def test_cost_summary_line(two: Path) -> None:
    total, _ = costs.run_estimates(load(two))
    line = cost_summary_line(two)
    assert "\n" not in line
    assert costs.usd(total.total) in line
    assert f"{costs.usd(total.total / (80 / 60))}/min" in line
    assert ("DetectFaces on 12 of 50 sampled frames (76% avoided: 10 duplicates skipped, "
            "28 frames without people)") in line
    assert f"Rekognition Video {costs.usd(80 / 60 * 0.10)}" in line
    assert "prices.json" in line


# ------------------------------------------------------------------ report content


def test_report_totals(two: Path) -> None:
    dom = parse(write_report(two).read_text())
    table = dom.find("table", None, id="totals-table")
    total = table.find("tr", "total")
    cells = {td.attrs["data-k"]: td.text for td in total.find_all("td") if "data-k" in td.attrs}
    # Results from before the tracker: how many people is unknown ("–"), not zero.
    assert cells == {"frames_sampled": "50", "duplicates_skipped": "10", "frames_with_people": "12",
                     "unique_people": "–", "faces": "12", "errors": "0"}
    rows = [tr for tr in table.find_all("tr") if "ok" in tr.attrs.get("class", "")]
    assert [r.find("a").text for r in rows] == ["a.mp4", "b.mp4"]
    saving = dom.find("p", None, id="saving")
    assert ("38 calls avoided (76%): 10 near-duplicate frames skipped before detection, 28 frames in which the "
            "detector found nobody.") in saving.text
    assert {b.attrs["data-avoided"]: b.text for b in saving.find_all("b") if "data-avoided" in b.attrs} == {
        "dedup": "10", "person-filter": "28"}
    assert dom.find("td", None, id="cost-total").attrs["data-usd"] == f"{costs.run_estimates(load(two))[0].total:.10f}"


def test_video_costs_for_the_run_table(two: Path) -> None:
    from vidsift.report import run_costs

    _, per_video = costs.run_estimates(load(two))
    line, got = run_costs(two)
    assert line == cost_summary_line(two)
    assert list(got.values()) == [costs.usd(e.total) for e in per_video]
    assert len(got) == 2 and all(k.startswith("uploads/") for k in got)


def test_report_escapes_a_nasty_file_name_and_errors(tmp_path: Path) -> None:
    frames = [Frame(0, 0.0, people=[(0.1, 0.1, 0.5, 0.8)], faces=[Face(0.2, 0.15, 0.1, 0.12, emotion="<b>X</b>")])]
    bad_error = "split_frames: <iframe src=//evil> & \"quoted\""
    out = write_results(tmp_path, [FixtureVideo(NASTY_NAME, "nasty", frames, errors=[bad_error])],
                        run_errors=["<svg onload=alert(3)>"])
    page = write_report(out).read_text()
    for raw in ("<script", "<img", "<iframe", "<svg onload", "<b>X"):
        assert raw not in page
    dom = parse(page)
    assert dom.find("h2", "file").text == NASTY_NAME
    assert [li.text for li in dom.find("section", "video").find("ul", "errors").find_all("li")] == [bad_error]
    assert [li.text for li in dom.find("section", None, id="totals").find("ul", "errors").find_all("li")] == [
        "<svg onload=alert(3)>"]
    assert dom.find("li", None, data_face="0").text.endswith("<b>x</b>, smiling")
    assert not dom.find_all("script") and not dom.find_all("img") and not dom.find_all("iframe")


def test_report_is_self_contained_with_boxes_on_the_thumbnails(two: Path) -> None:
    dom = parse(write_report(two).read_text())
    assert not dom.find_all("script") and not dom.find_all("link")
    for node in dom.iter():
        for attr in ("src", "href"):
            value = node.attrs.get(attr, "")
            if value and not (value.startswith(("data:image/jpeg;base64,", "#"))):
                assert node.tag == "a" and value.startswith("https://aws.amazon.com/"), (node.tag, value)
    section = dom.find("section", "video", id="v0")
    figures = section.find_all("figure", "frame")
    assert [f.attrs["data-frame"] for f in figures] == [str(i) for i in range(9)]
    fig = figures[0]
    svg = fig.find("svg", "thumb")
    w, h = int(svg.attrs["data-width"]), int(svg.attrs["data-height"])
    img = Image.open(io.BytesIO(base64.b64decode(svg.find("image").attrs["href"].split(",", 1)[1])))
    assert img.size == (w, h) == (320, 240)  # 640×480 downscaled
    person = svg.find("rect", "person")
    assert [float(person.attrs[k]) for k in ("x", "y", "width", "height")] == pytest.approx(
        [0.25 * w, 0.2 * h, 0.375 * w, 0.7 * h], abs=0.01)
    faces = svg.find_all("rect", "face")
    assert len(faces) == 2
    assert [float(faces[1].attrs[k]) for k in ("x", "y", "width", "height")] == pytest.approx(
        [0.55 * w, 0.3 * h, 0.1 * w, 0.15 * h], abs=0.01)
    assert "age 25–35, Female (97%), happy, smiling" in faces[0].find("title").text
    assert [li.text for li in fig.find("ul", "faces").find_all("li")] == [
        "1 age 25–35, Female (97%), happy, smiling", "2 age 25–35, Female (97%), happy, smiling"]
    # The downscaled thumbnail still shows the blue "person" where the box is (below the face).
    px = img.convert("RGB").getpixel((int(0.25 * w + 0.375 * w / 2), int(0.2 * h + 0.7 * h * 0.8)))
    assert px[2] > 200 and px[0] < 60 and px[1] < 60


def test_timeline_has_a_bar_per_sampled_frame(two: Path) -> None:
    dom = parse(write_report(two).read_text())
    svg = dom.find("section", "video", id="v1").find("svg", "timeline")
    bars = svg.find_all("rect", "bar")
    assert [(b.attrs["data-frame"], b.attrs["data-people"]) for b in bars] == [
        (str(i), "1" if i in (2, 5, 7) else "0") for i in range(10)]
    span = float(svg.attrs["data-span"])
    assert span == 20.0
    xs = [float(b.attrs["x"]) for b in bars]
    step = xs[1] - xs[0]
    assert all(math.isclose(b - a, step, abs_tol=0.02) for a, b in itertools.pairwise(xs))
    # Bars of frames with a thumbnail link to it.
    links = [a.attrs["href"] for a in svg.find_all("a")]
    assert links == ["#v1-f000002", "#v1-f000005", "#v1-f000007"]
    assert [f.attrs["id"] for f in dom.find("section", "video", id="v1").find_all("figure")] == [
        link[1:] for link in links]


def test_many_frames_with_people_are_thinned_and_a_missing_frame_is_shown_as_such(tmp_path: Path) -> None:
    frames = [Frame(i, float(i), people=[(0.1, 0.1, 0.2, 0.2)]) for i in range(100)]
    out = write_results(tmp_path, [FixtureVideo("long.mp4", "long", frames, duration_s=100.0, write_frames=False)])
    dom = parse(render(load(out), max_thumbs=12))
    figs = dom.find_all("figure", "frame")
    assert len(figs) == 12
    assert figs[0].attrs["data-frame"] == "0" and figs[-1].attrs["data-frame"] == "99"
    assert "12 of 100" in dom.find("section", "video").text
    assert figs[0].find("text", "missing").text == "frame image missing"
    assert len(figs[0].find_all("rect", "person")) == 1


def test_a_summary_from_before_duplicate_skipping(tmp_path: Path) -> None:
    videos = two_videos()
    videos[1].duplicates_skipped = None
    data = load(write_results(tmp_path, videos))
    assert data.videos[1].duplicates_skipped is None and data.videos[1].frames_kept == 10
    dom = parse(render(data))
    row = dom.find("table", None, id="totals-table").find_all("tr", "ok")[1]
    assert row.find("td", None, data_k="duplicates_skipped").text == "–"
    total, _ = costs.run_estimates(data)
    assert total.usage.frames_kept == 40 and total.usage.frames_sampled == 50


def test_segments_add_their_requests(tmp_path: Path) -> None:
    videos = two_videos()
    out = write_results(tmp_path, videos)
    base, _ = costs.run_estimates(load(out))
    doc = json.loads((out / "summaries" / "aaaa.json").read_text())
    (out / "summaries" / "aaaa.json").write_text(json.dumps(doc | {"segments": 3}))
    cut, _ = costs.run_estimates(load(out))
    # 3 segments: 3 segment documents + 3 LISTs; 3 HEADs + 3·4/2 document GETs; 3 messages; 2·3 writes.
    assert cut.usage.s3_put - base.usage.s3_put == 6
    assert cut.usage.s3_get - base.usage.s3_get == 3 + 6
    assert cut.usage.sqs_requests - base.usage.sqs_requests == pytest.approx(3)
    assert cut.usage.dynamodb_writes - base.usage.dynamodb_writes == 6


def test_a_failed_video_without_rows_is_in_the_totals(tmp_path: Path) -> None:
    videos = [*two_videos(), FixtureVideo("broken.mp4", None, errors=["split_frames: not a video"])]
    dom = parse(write_report(write_results(tmp_path, videos)).read_text())
    failed = dom.find("table", None, id="totals-table").find("tr", "failed")
    assert failed.find("a").text == "broken.mp4"
    total = dom.find("table", None, id="totals-table").find("tr", "total")
    assert total.find("td", None, data_k="errors").text == "1"


# ------------------------------------------------------------------ vidsift report --out DIR


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vidsift")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_report_command_rebuilds_the_report(two: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = two / REPORT_NAME
    stale.write_text("old")
    assert _cli(["report", "--out", str(two)]) == 0
    out = capsys.readouterr().out
    assert stale.read_text().startswith("<!doctype html>")
    assert cost_summary_line(two) in out and str(stale) in out
    assert not list(two.glob(".*.tmp"))


def test_report_command_on_a_folder_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["report", "--out", str(tmp_path / "nowhere")]) == 2
    assert _cli(["report", "--out", str(tmp_path)]) == 2
    assert "holds no results" in capsys.readouterr().err
    assert not (tmp_path / REPORT_NAME).exists()


def test_report_of_an_empty_run(tmp_path: Path) -> None:
    """A run where every video failed before split_frames wrote anything still reports."""
    out = write_results(tmp_path, [FixtureVideo("x.mp4", None, errors=["split_frames: empty"])],
                        run_stages=stages(1.0, 0.0, 0.0, detect_inv=0, detect_received=0, analyze_inv=0,
                                          analyze_received=0))
    page = write_report(out).read_text()
    assert "x.mp4" in page and "split_frames: empty" in page
    assert "DetectFaces on 0 of 0" not in cost_summary_line(out)



# ------------------------------------------------------------------ the person tracker (tracks table)


@pytest.fixture
def tracked(tmp_path: Path) -> Path:
    return write_results(tmp_path / "out", [tracked_video()], run_stages=stages(1.0, 2.0, 3.0, track_s=4.0))


def test_tracked_video_reads_its_visits_once(tracked: Path) -> None:
    (v,) = load(tracked).videos
    # p002 was delivered twice: one row per record_id.
    assert [t["track_id"] for t in v.tracks] == ["p001", "p002", "p003"]
    assert v.tracked and v.unique_people == 3
    assert v.frames_with_people == 15 and v.detect_faces_calls == 2 + 1 + 0
    assert v.face_groups == 2


def test_cost_of_a_tracked_run(tracked: Path) -> None:
    """C: 20 frames kept, 15 with people, 3 tracks of which 2 have frames to analyse (2 face
    groups at most), 3 DetectFaces calls, 1 segment, 1 MiB read (one ranged GET)."""
    data = load(tracked)
    total, (c,) = costs.run_estimates(data)
    got = {line.component: line for line in total.lines}
    # DetectFaces: the tracks' chosen frames, not the 15 frames with people.
    assert got["Rekognition DetectFaces"].quantity == 3
    assert got["Rekognition DetectFaces"].usd == pytest.approx(3 * price("rekognition_detect_faces_image"))
    # track_people: 4 s at its 1024 MB, like the other stages; its invocations are requests too.
    assert got["Lambda track_people"].quantity == pytest.approx(4.0 * 1024 / 1024)
    assert got["Lambda requests"].quantity == pytest.approx(2 + 5 + 2 + 3)
    # Firehose: 20 people rows + 2 face rows + 3 track rows (the duplicate delivery is not billed twice here:
    # the folder is what was kept).
    assert total.usage.firehose_records == 25
    # S3 PUT/COPY: upload + 20 frames + summary + 15 copies to the people bucket + 1 tracking document
    # + 2 face-work documents.
    assert got["S3 PUT/COPY"].quantity == 1 + 20 + 1 + 15 + 1 + 2
    # S3 GET/HEAD: HEAD + 1 ranged GET + 1 per frame kept (the endpoint's read, which returns the
    # frame's metadata: no HEAD by detect_people) + the tracking document + 2 work documents + one
    # image read per DetectFaces call (no per-frame HEAD by analyze_faces any more).
    assert got["S3 GET/HEAD"].quantity == 1 + 1 + 20 + 1 + 2 + 3
    # SQS: the video event + 20 frame events + 1 batch of segment messages + the video message + 1 batch of
    # face-group messages, and a receive and a delete per invocation (12).
    assert got["SQS"].quantity == pytest.approx(1 + 20 + 1 + 1 + 1 + 2 * 12)
    # DynamoDB: idempotency 2 × (video + 1 segment message + 1 video message + 2 groups: none per frame,
    # detect_people's writes are keyed by the frame); the progress table: per frame an item of its boxes
    # (rows under 1 KB: 1 unit), one UpdateItem per batch of 16 frames (2, the item under 1 KB), 1 update
    # by split_frames, 2 per segment and 1 per video by track_people.
    assert all(len(json.dumps(r)) < 1000 for r in data.videos[0].people)
    assert got["DynamoDB writes"].quantity == 2 * (1 + 1 + 1 + 2) + (20 + 2 + 1 + 2 + 1)
    assert total.total == pytest.approx(sum(line.usd for line in total.lines))
    # What was avoided: 5 frames without people, 12 frames of people already analysed.
    assert (total.avoided_by_dedup, total.avoided_by_person_filter, total.avoided_by_tracking) == (0, 5, 12)
    assert total.avoided_ratio == pytest.approx(17 / 20)
    assert ("DetectFaces on 3 of 20 sampled frames (85% avoided: 0 duplicates skipped, 5 frames without people, "
            "12 frames of people already seen (tracking: 3 people))") in costs.summary_line(total)
    assert c.total == pytest.approx(total.total)


def test_the_run_record_of_detect_faces_calls_wins(tmp_path: Path) -> None:
    """run.json's count is what analyze_faces did (tracks of one group share frames); the tracks'
    face_frames are only the fallback."""
    video = tracked_video()
    video.recorded = {"detect_faces_calls": 2, "tracks": 3, "face_groups": 1}
    out = write_results(tmp_path, [video], run_stages=stages(1.0, 2.0, 3.0, track_s=4.0))
    (v,) = load(out).videos
    assert (v.detect_faces_calls, v.face_groups, v.unique_people) == (2, 1, 3)
    total, _ = costs.run_estimates(load(out))
    assert next(x for x in total.lines if x.component == "Rekognition DetectFaces").quantity == 2
    assert total.avoided_by_tracking == 13


def test_analyze_faces_time_is_shared_by_detect_faces_calls(tmp_path: Path) -> None:
    """B has 3 frames with people but, tracked, 1 chosen frame; C 3 calls: analyze_faces' 3 s is
    shared 1 : 3 (by calls), track_people's 4 s 10 : 20 (by frames kept)."""
    b = two_videos()[1]
    b.tracks = [Track("p001", [2, 5, 7], (0.1, 0.1, 0.3, 0.8), face_frames=1)]
    out = write_results(tmp_path, [b, tracked_video()], run_stages=stages(1.0, 2.0, 3.0, track_s=4.0))
    _, (eb, ec) = costs.run_estimates(load(out))

    def q(e: costs.Estimate, name: str) -> float:
        return next(x.quantity for x in e.lines if x.component == name)

    assert q(eb, "Lambda analyze_faces") == pytest.approx(3.0 * 1 / 4 * 0.5)
    assert q(ec, "Lambda analyze_faces") == pytest.approx(3.0 * 3 / 4 * 0.5)
    assert q(eb, "Lambda track_people") == pytest.approx(4.0 * 10 / 30)
    assert q(eb, "Rekognition DetectFaces") == 1


def test_estimate_run_for_run_json(tracked: Path) -> None:
    from vidsift.report import estimate_run

    total, _ = costs.run_estimates(load(tracked))
    got = estimate_run(tracked)
    assert got["usd"] == pytest.approx(total.total)
    assert got["video_minutes"] == pytest.approx(20 / 60)
    assert got["usd_per_video_minute"] == pytest.approx(total.total / (20 / 60))
    assert (got["detect_faces_calls"], got["tracks"], got["frames_sampled"]) == (3, 3, 20)
    assert sum(got["lines"].values()) == pytest.approx(got["usd"])
    json.dumps(got)  # it goes into run.json as it is
    # The runner calls it before writing run.json: the document it is about to write gives the same.
    doc = json.loads((tracked / "run.json").read_text())
    (tracked / "run.json").unlink()
    assert estimate_run(tracked)["usd"] is None  # no stage times: Lambda and SageMaker unknown, no partial total
    assert estimate_run(tracked, run=doc) == got


def test_report_shows_people_visits_and_best_frames(tracked: Path) -> None:
    dom = parse(write_report(tracked).read_text())
    total = dom.find("table", None, id="totals-table").find("tr", "total")
    assert total.find("td", None, data_k="unique_people").text == "3"
    section = dom.find("section", "video", id="v0")
    assert section.find("p", "people").attrs["data-unique-people"] == "3"
    assert "3 people seen (one per visit tracked), 2 with a face found, known: alice" in section.text
    assert "3 people (visits tracked)" in section.find("p", "meta").text
    svg = section.find("svg", "visits")
    bars = svg.find_all("rect", "visit")
    assert [(b.attrs["data-track"], b.attrs["data-first"], b.attrs["data-last"]) for b in bars] == [
        ("p001", "2", "12"), ("p002", "8", "15"), ("p003", "18", "18")]
    assert [b.attrs["class"] for b in bars] == ["visit known", "visit withface", "visit"]
    # Same time axis as the people timeline: 20 s over the 834 px plot that starts at x=40.
    assert float(svg.attrs["data-span"]) == float(section.find("svg", "timeline").attrs["data-span"]) == 20.0
    assert float(bars[0].attrs["x"]) == pytest.approx(40 + 2 / 20 * 834, abs=0.01)
    assert float(bars[0].attrs["width"]) == pytest.approx(10 / 20 * 834, abs=0.01)
    assert float(bars[2].attrs["width"]) == 3  # a single detection still shows
    assert [len(g.find_all("line")) for g in svg.find_all("g", "seen")] == [11, 8, 1]
    assert "alice (97% match), age 30–38, Female, happy" in bars[0].find("title").text
    # Each bar links to the person's best frame.
    figs = section.find_all("figure", "track")
    assert [a.attrs["href"] for a in svg.find_all("a")] == [f"#{f.attrs['id']}" for f in figs]
    assert [f.attrs["data-best-frame"] for f in figs] == ["cccc/000005.jpg", "cccc/000010.jpg", "cccc/000018.jpg"]
    assert [f.find("p", "who").text for f in figs] == [
        "alice (97% match), age 30–38, Female, happy", "age 20–26, Male, calm",
        "no face analysed (too small or too brief)"]
    # Alice's crop: her box (0.1, 0.1, 0.3, 0.8) and a quarter of it around, inside the 640×480 frame:
    # x 16-304 px, y 0-480 px, 288×480 px shown as 120×200; the box drawn where she is.
    crop = figs[0].find("svg", "crop")
    w, h = int(crop.attrs["data-width"]), int(crop.attrs["data-height"])
    assert (w, h) == (120, 200)
    box = crop.find("rect", "person")
    assert [float(box.attrs[k]) for k in ("x", "y", "width", "height")] == pytest.approx([20, 20, 80, 160], abs=0.5)
    img = Image.open(io.BytesIO(base64.b64decode(crop.find("image").attrs["href"].split(",", 1)[1]))).convert("RGB")
    assert img.size == (w, h)
    px = img.getpixel((60, 150))  # inside her box, below the face: the blue "person"
    assert px[2] > 200 and px[0] < 60 and px[1] < 60
    corner = img.getpixel((3, 190))  # the margin beside her: background
    assert max(corner) < 80
    # The cost section says what the tracker saved.
    saving = dom.find("p", None, id="saving")
    assert {b.attrs["data-avoided"]: b.text for b in saving.find_all("b") if "data-avoided" in b.attrs} == {
        "dedup": "0", "person-filter": "5", "tracking": "12"}


def test_track_without_its_frame_image_and_thinned_visits(tmp_path: Path) -> None:
    video = tracked_video()
    video.write_frames = False
    out = write_results(tmp_path, [video], run_stages=stages(track_s=1.0))
    dom = parse(render(load(out), max_track_thumbs=2))
    figs = dom.find_all("figure", "track")
    # The two longest visits (p001 10 s, p002 7 s), in time order.
    assert [f.attrs["data-track"] for f in figs] == ["p001", "p002"]
    assert figs[0].find("text", "missing").text == "no image"
    assert "2 longest of 3" in dom.find("section", "video").text
    # All three still on the timeline; the one without a figure has no link.
    svg = dom.find("svg", "visits")
    assert len(svg.find_all("rect", "visit")) == 3 and len(svg.find_all("a")) == 2


def test_a_tracked_run_with_no_tracks_and_an_old_run(tmp_path: Path) -> None:
    """The tracker ran but saw nobody: 0 people (known), no visits section, no DetectFaces. A
    results folder from before the tracker: people unknown, no visits section."""
    empty = FixtureVideo("empty.mp4", "eeee", [Frame(i, float(i)) for i in range(5)])
    broken = FixtureVideo("broken.mp4", None, errors=["split_frames: not a video"])
    out = write_results(tmp_path / "new", [empty, broken], run_stages=stages(track_s=0.5))
    assert not (out / "analytics" / "tracks").exists()
    data = load(out)
    assert data.videos[0].unique_people == 0 and data.videos[0].detect_faces_calls == 0
    assert data.videos[1].unique_people is None and not data.videos[1].tracked  # never split: never tracked
    dom = parse(write_report(out).read_text())
    assert [td.text for td in dom.find_all("td") if td.attrs.get("data-k") == "unique_people"] == ["0", "–", "0"]
    assert not dom.find_all("svg", "visits") and not dom.find_all("figure", "track")
    total, _ = costs.run_estimates(data)
    assert total.usage.detect_faces_images == 0 and total.usage.tracked_videos == 1
    old = write_results(tmp_path / "old", two_videos())
    dom = parse(write_report(old).read_text())
    assert not dom.find_all("svg", "visits")
    assert {td.text for td in dom.find_all("td") if td.attrs.get("data-k") == "unique_people"} == {"–"}
    assert "tracking" not in cost_summary_line(old)


def test_track_attributes_in_words() -> None:
    from vidsift.report.render import track_attributes

    assert track_attributes({"face_frames": 2, "faces": 0}) == "no face found"
    assert track_attributes({"face_frames": 0, "faces": 0}) == "no face analysed (too small or too brief)"
    assert track_attributes({"matched_name": "<b>bob</b>", "match_similarity": None, "face_frames": 1,
                             "faces": 1}) == "<b>bob</b>"
    assert track_attributes({"age_low": 20, "age_high": None, "gender": "Male", "top_emotion": "SAD",
                             "faces": 1, "face_frames": 1}) == "age 20–?, Male, sad"
