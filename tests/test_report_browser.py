"""The report as a person sees it: rendered by headless Chromium.

From the DOM Chromium built (``--dump-dom``): the timelines and thumbnails are there and
every box sits where its row says. From a screenshot: the drawn box outlines surround the
solid blocks the fixture painted where its "people" and "faces" are, so a box that lands
in the wrong place on screen fails even when the numbers in the markup look right.

Chromium is required: in CI (``CI`` set) its absence fails these tests; elsewhere they are
skipped with the reason printed. ``make test`` installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from test_report_fixture import (
    NASTY_NAME,
    Face,
    FixtureVideo,
    Frame,
    Node,
    parse,
    two_videos,
    write_results,
)

from vidsift.local.warehouse import connect
from vidsift.report import cost_summary_line, write_report

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1", "--mute-audio")
#: A guard against a hung browser, not a timing assertion.
HANG_GUARD_S = 180


class Chromium:
    def __init__(self, binary: str) -> None:
        self.binary = binary

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="vidsift-chromium-") as profile:
            proc = subprocess.run([self.binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                                  text=True, timeout=HANG_GUARD_S, check=False)
        assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
        return proc

    def dom(self, page: Path) -> Node:
        out = self._run("--dump-dom", page.resolve().as_uri()).stdout
        assert "<html" in out, out[:500]
        return parse(out)

    def screenshot(self, page: Path, png: Path, width: int, height: int) -> Image.Image:
        self._run(f"--screenshot={png}", f"--window-size={width},{height}", page.resolve().as_uri())
        return Image.open(png).convert("RGB")


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    binary = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if binary is None:
        reason = ("headless Chromium is not installed, so the report was not checked in a browser "
                  "(apt-get install chromium; `make test` installs it)")
        if os.environ.get("CI"):
            pytest.fail(f"{reason}. CI is set: this must not be skipped.", pytrace=False)
        # A warning shows in pytest's summary even with -q, where a skip reason does not.
        warnings.warn(f"test_report_browser skipped: {reason}", pytest.PytestWarning, stacklevel=1)
        pytest.skip(reason)
    return Chromium(binary)


def table_rows(out: Path, table: str) -> list[dict]:
    con = connect(out)
    order = "video_id, frame_index" + (", face_index" if table == "faces" else "")
    cur = con.execute(f"SELECT * FROM {table} ORDER BY {order}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def check_boxes_match_rows(dom: Node, out: Path) -> int:
    """Every frame with people in the tables is a thumbnail whose person and face rects are
    the rows' ratios of the thumbnail's size; returns how many boxes were checked."""
    people = [r for r in table_rows(out, "people") if r["person_count"]]
    faces = table_rows(out, "faces")
    sections = {s.attrs["data-video-id"]: s for s in dom.find_all("section", "video")}
    checked = 0
    for row in people:
        fig = sections[row["video_id"]].find("figure", "frame", data_frame=str(row["frame_index"]))
        svg = fig.find("svg", "thumb")
        w, h = (float(v) for v in svg.attrs["viewbox"].split()[2:])  # the parser lowercases names
        assert svg.find("image").attrs["href"].startswith("data:image/jpeg;base64,")
        rects = svg.find_all("rect", "person")
        boxes = json.loads(row["boxes"])
        assert len(rects) == len(boxes) == row["person_count"]
        for rect, box in zip(rects, boxes, strict=True):
            got = [float(rect.attrs[k]) for k in ("x", "y", "width", "height")]
            assert got == pytest.approx([box["left"] * w, box["top"] * h, box["width"] * w, box["height"] * h],
                                        abs=0.01)
            checked += 1
        frame_faces = [f for f in faces if f["video_id"] == row["video_id"] and f["frame_index"] == row["frame_index"]]
        face_rects = svg.find_all("rect", "face")
        assert len(face_rects) == len(frame_faces)
        for rect, f in zip(face_rects, frame_faces, strict=True):
            got = [float(rect.attrs[k]) for k in ("x", "y", "width", "height")]
            assert got == pytest.approx([f["bbox_left"] * w, f["bbox_top"] * h, f["bbox_width"] * w,
                                         f["bbox_height"] * h], abs=0.01)
            assert f"age {f['age_low']}–{f['age_high']}" in rect.find("title").text
            checked += 1
    assert sum(len(s.find_all("figure", "frame")) for s in sections.values()) == len(people)
    return checked


def check_timelines_match_rows(dom: Node, out: Path) -> None:
    rows = table_rows(out, "people")
    for section in dom.find_all("section", "video"):
        mine = [r for r in rows if r["video_id"] == section.attrs["data-video-id"]]
        if not mine:
            continue
        svg = section.find("svg", "timeline")
        bars = svg.find_all("rect", "bar")
        assert [(int(b.attrs["data-frame"]), int(b.attrs["data-people"])) for b in bars] == [
            (r["frame_index"], r["person_count"]) for r in mine]
        ymax = int(svg.attrs["data-ymax"])
        heights = [float(b.attrs["height"]) for b in bars]
        full = max(heights) * ymax / max(r["person_count"] for r in mine) if any(heights) else 0
        for b, r in zip(heights, mine, strict=True):
            assert b == pytest.approx(full * r["person_count"] / ymax, abs=0.02)
        xs = [float(b.attrs["x"]) for b in bars]
        assert xs == sorted(xs) and len(set(xs)) == len(xs)


# ------------------------------------------------------------------ a fixture with known boxes


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    videos = two_videos()
    videos[0].file = NASTY_NAME
    out = write_results(tmp_path_factory.mktemp("report") / "out", videos)
    write_report(out)
    yield out


def test_rendered_dom_has_timelines_thumbnails_and_boxes_where_the_rows_say(chromium: Chromium,
                                                                           fixture_report: Path) -> None:
    dom = chromium.dom(fixture_report / "report.html")
    assert dom.find("h2", "file").text == NASTY_NAME
    assert not dom.find_all("script") and not dom.find_all("img") and not dom.find_all("iframe")
    assert len(dom.find_all("svg", "timeline")) == 2
    check_timelines_match_rows(dom, fixture_report)
    assert check_boxes_match_rows(dom, fixture_report) == 9 + 12 + 3
    assert dom.find("td", None, id="cost-total").text.startswith("$")


def _bbox(img: Image.Image, want, region: tuple[int, int, int, int] | None = None) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of the pixels ``want`` accepts."""
    x0, y0, x1, y1 = region or (0, 0, img.width, img.height)
    px = img.load()
    hits = [(x, y) for y in range(max(0, y0), min(img.height, y1)) for x in range(max(0, x0), min(img.width, x1))
            if want(px[x, y])]
    assert hits, f"no such pixels in {region}"
    xs, ys = [h[0] for h in hits], [h[1] for h in hits]
    return min(xs), min(ys), max(xs), max(ys)


def _around(box: tuple[int, int, int, int], margin: float) -> tuple[int, int, int, int]:
    w, h = box[2] - box[0], box[3] - box[1]
    dx, dy = margin * w, margin * h
    return int(box[0] - dx), int(box[1] - dy), int(box[2] + dx) + 1, int(box[3] + dy) + 1


def test_screenshot_boxes_outline_the_people_and_faces(chromium: Chromium, tmp_path: Path) -> None:
    person, face = (0.25, 0.2, 0.375, 0.7), Face(0.375, 0.25, 0.125, 0.2)
    out = write_results(tmp_path / "out", [FixtureVideo("one.mp4", "one", [Frame(0, 0.0), Frame(1, 1.0, [person],
                                                                                                  [face])])])
    img = chromium.screenshot(write_report(out), tmp_path / "shot.png", 1280, 2400)

    def blue(p: tuple[int, int, int]) -> bool:
        return p[2] > 200 and p[0] < 60 and p[1] < 60

    def yellow(p: tuple[int, int, int]) -> bool:
        return p[0] > 200 and p[1] > 200 and p[2] < 80

    def person_stroke(p: tuple[int, int, int]) -> bool:  # --person: #00e676
        return p[1] > 180 and p[0] < 80 and 70 < p[2] < 170

    def face_stroke(p: tuple[int, int, int]) -> bool:  # --face: #ff4081
        return p[0] > 200 and 30 < p[1] < 110 and 90 < p[2] < 170

    block = _bbox(img, blue)
    # The block is the thumbnail's person: 0.375 × 320 px wide on screen, 0.7 × 240 px high.
    assert block[2] - block[0] == pytest.approx(0.375 * 320, abs=4)
    assert block[3] - block[1] == pytest.approx(0.7 * 240, abs=4)
    outline = _bbox(img, person_stroke, _around(block, 0.5))
    for got, want in zip(outline, block, strict=True):
        assert got == pytest.approx(want, abs=3), (outline, block)
    face_block = _bbox(img, yellow, _around(block, 0.1))
    face_outline = _bbox(img, face_stroke, _around(face_block, 0.5))
    for got, want in zip(face_outline, face_block, strict=True):
        assert got == pytest.approx(want, abs=3), (face_outline, face_block)


# ------------------------------------------------------------------ the real pipeline


def test_report_of_a_real_run(chromium: Chromium, tmp_path: Path, people_video: Path) -> None:
    """``vidsift run`` on a clip with a person in its middle third, then the report of it."""
    from vidsift.local.runner import run_videos

    out = tmp_path / "out"
    report = run_videos([people_video], out, progress=False, timeout_s=600)
    assert report.ok
    dom = chromium.dom(write_report(out))
    video = report.videos[0]
    assert video.frames_with_people > 0
    section = dom.find("section", "video")
    assert section.find("h2", "file").text == people_video.name
    check_timelines_match_rows(dom, out)
    assert check_boxes_match_rows(dom, out) >= video.frames_with_people
    total = dom.find("table", None, id="totals-table").find("tr", "total")
    assert total.find("td", None, data_k="frames_sampled").text == str(video.frames_sampled)
    assert total.find("td", None, data_k="frames_with_people").text == str(video.frames_with_people)
    assert total.find("td", None, data_k="faces").text == str(video.faces)
    # faces once per visit: the calls made, fewer than the frames with people
    assert 0 < video.detect_faces_calls < video.frames_with_people
    assert f"DetectFaces on {video.detect_faces_calls} of {video.frames_sampled}" in cost_summary_line(out)
