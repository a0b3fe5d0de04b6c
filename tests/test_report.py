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
from test_report_fixture import NASTY_NAME, Face, FixtureVideo, Frame, parse, stages, two_videos, write_results

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
    assert got["DynamoDB idempotency"].quantity == 2 * ((1 + 30 + 9) + (1 + 10 + 3))
    assert total.total == pytest.approx(sum(line.usd for line in total.lines))
    assert total.complete
    # Per video minute: 80 s of video.
    assert total.video_minutes == pytest.approx(80 / 60)
    assert total.per_minute == pytest.approx(total.total / (80 / 60))
    # Per video shares add up to the run, line by line.
    for i, line in enumerate(total.lines):
        assert sum(e.lines[i].usd for e in per_video) == pytest.approx(line.usd)
    a, b = per_video
    # split_frames is shared by each video's own split time (2 s : 1 s), detect_people by frames (30 : 10).
    assert a.lines[0].quantity == pytest.approx(4.0) and b.lines[0].quantity == pytest.approx(2.0)
    assert a.lines[1].quantity == pytest.approx(3.0) and b.lines[1].quantity == pytest.approx(1.0)
    assert a.lines[2].quantity == pytest.approx(6.0 * 9 / 12 * 0.5)


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
    assert dear.lines[4].usd == pytest.approx(2 * base.lines[4].usd)  # Lambda requests
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
    assert cells == {"frames_sampled": "50", "duplicates_skipped": "10", "frames_with_people": "12",
                     "faces": "12", "errors": "0"}
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

