"""Lines and zones through the embedded local AWS: a generated clip of two people crossing a
door's line both ways (real H.264, real SSDLite, the real tracker), counted by track_people with
the layout stored where it reads it; a camera without a layout gives no rows and no error; a
replay changes nothing; a recount with a changed layout, from the stored tracks alone (the
frames deleted first), rewrites the rows, in the bucket as for a deployed stage and in a
local results folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vidsift import aws, contract
from vidsift.cli.commands import main
from vidsift.core import completion
from vidsift.core import layout as lay
from vidsift.local.dispatcher import Dispatcher
from vidsift.local.results import analytics_rows, collect, export
from vidsift.local.runner import upload
from vidsift.stages import counting
from vidsift.testing.scenes import Leg, Scene, render

LAYOUT = """
cameras:
  door:
    lines:
      - name: entrance
        points: [[0.5, 0.3], [0.5, 1.0]]
        in_from: [0.1, 0.8]
    zones:
      - name: middle
        polygon: [[0.3, 0.7], [0.7, 0.7], [0.7, 1.0], [0.3, 1.0]]
"""
#: Two people, large enough for SSDLite, one after the other: A left to right (in), C right to
#: left (out); each walks through the middle zone.
SCENE = Scene("door both ways", 24, (
    Leg("A", ((1, -0.15, 0.93, 0.7), (11, 1.15, 0.93, 0.7))),
    Leg("C", ((12, 1.15, 0.95, 0.7), (22, -0.15, 0.95, 0.7))),
))


def _since() -> str:
    """The day the stack's videos were tracked (their dt), as a --since: yesterday's date, so
    that a run crossing midnight UTC between tracking and recount still finds them (the local
    stack is new each session: there is nothing older)."""
    return (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


def _video_id(stack: Any, key: str) -> str:
    from vidsift.core import ids

    raw = stack.names.bucket("raw")
    etag = aws.client("s3").head_object(Bucket=raw, Key=key)["ETag"].strip('"')
    return ids.video_id(raw, key, etag)


def _rows(stack: Any, table: str, video: str) -> list[dict[str, Any]]:
    return sorted((r for r in analytics_rows(stack, table) if r["video_id"] == video),
                  key=lambda r: (r["track_id"], r["record_id"]))


@pytest.fixture(scope="module")
def counted(local_stack: Any, tmp_path_factory: pytest.TempPathFactory, short_video: Path) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("lines")
    clip = d / "door.mp4"
    render(SCENE, clip, fps=10)
    counting.put_layout(local_stack.names.bucket("analytics"), lay.loads(LAYOUT))
    upload(local_stack, clip, "uploads/lines/door.mp4", "door", "2026-12-01T09:00:00Z")
    upload(local_stack, short_video, "uploads/lines/porch.mp4", "porch", None)  # no layout for porch
    assert Dispatcher(local_stack).run_until_idle(timeout_s=300)
    door, porch = _video_id(local_stack, "uploads/lines/door.mp4"), _video_id(local_stack, "uploads/lines/porch.mp4")
    return {"door": door, "porch": porch, "dir": d}


def test_crossings_and_zone_visits_are_counted_from_the_tracks(local_stack: Any, counted: dict[str, Any]) -> None:
    video = counted["door"]
    crossings = sorted(_rows(local_stack, "crossings", video), key=lambda r: r["time_s"])
    assert [(r["line"], r["direction"], r["camera_id"]) for r in crossings] == [
        ("entrance", "in", "door"), ("entrance", "out", "door")]
    # A reaches x 0.5 at 6.0 s, C at 17.0 s (true feet; the boxes' centres are the same inside the frame)
    assert [round(r["time_s"]) for r in crossings] == [6, 17]
    assert crossings[0]["captured_at"].startswith("2026-12-01T09:00:0")
    visits = sorted(_rows(local_stack, "zone_visits", video), key=lambda r: r["entered_s"])
    assert [r["zone"] for r in visits] == ["middle", "middle"]
    # each walks 0.4 of the frame's width at 0.13 a second: about 3.1 s in the zone
    assert all(abs(r["dwell_s"] - 0.4 / 0.13) <= 1.0 for r in visits), visits
    tracks = {r["track_id"] for r in _rows(local_stack, "tracks", video)}
    assert {r["track_id"] for r in crossings + visits} <= tracks


def test_a_camera_without_a_layout_gets_no_rows_and_no_error(local_stack: Any, counted: dict[str, Any]) -> None:
    video = counted["porch"]
    assert _rows(local_stack, "tracks", video)  # tracked as ever
    assert not _rows(local_stack, "crossings", video) and not _rows(local_stack, "zone_visits", video)
    analytics = local_stack.names.bucket("analytics")
    assert not [k for t in contract.COUNT_TABLES for k in aws.list_keys(analytics, contract.load()["count_tables"][t])
                if video in k]
    assert not collect(local_stack).errors


def test_a_replay_changes_nothing(local_stack: Any, counted: dict[str, Any]) -> None:
    video = counted["door"]
    before = {t: _rows(local_stack, t, video) for t in contract.COUNT_TABLES}
    aws.send_messages(local_stack.queue_urls["track_people"], [completion.VideoMessage(video).to_json()])
    assert Dispatcher(local_stack).run_until_idle(timeout_s=120)
    assert {t: _rows(local_stack, t, video) for t in contract.COUNT_TABLES} == before


def test_recount_from_stored_tracks_alone(local_stack: Any, counted: dict[str, Any], capsys: Any) -> None:
    """The line turned round (in_from on the right): ins become outs, without a frame or a detector.
    The video's frames are deleted first, so nothing could have been detected again."""
    video, d = counted["door"], counted["dir"]
    frames = local_stack.names.bucket("frames")
    for key in aws.list_keys(frames, f"{video}/"):
        aws.client("s3").delete_object(Bucket=frames, Key=key)
    flipped = d / "flipped.yaml"
    flipped.write_text(LAYOUT.replace("in_from: [0.1, 0.8]", "in_from: [0.9, 0.8]"))
    analytics = local_stack.names.bucket("analytics")
    today = _since()
    assert main(["recount", "--bucket", analytics, "--since", today, "--cameras", str(flipped),
                 "--camera", "door"]) == 0
    assert "2 crossing(s), 2 zone visit(s)" in capsys.readouterr().out
    crossings = sorted(_rows(local_stack, "crossings", video), key=lambda r: r["time_s"])
    assert [r["direction"] for r in crossings] == ["out", "in"]
    # the same record ids (the same crossings), in the same objects: nothing added
    assert len(analytics_rows(local_stack, "crossings")) == len({r["record_id"] for r in
                                                                analytics_rows(local_stack, "crossings")})

    # The same on a local results folder, then read with `vidsift query`.
    out = d / "results"
    export(local_stack, collect(local_stack), out)
    assert main(["recount", "--out", str(out), "--cameras", str(d / "flipped.yaml")]) == 0
    capsys.readouterr()
    (d / "orig.yaml").write_text(LAYOUT)
    assert main(["recount", "--out", str(out), "--cameras", str(d / "orig.yaml")]) == 0
    capsys.readouterr()
    sql = f"SELECT direction, count(*) AS n FROM crossings WHERE video_id = '{video}' GROUP BY 1 ORDER BY 1"
    assert main(["query", "--out", str(out), "--format", "json", sql]) == 0
    assert json.loads(capsys.readouterr().out) == [{"direction": "in", "n": 1}, {"direction": "out", "n": 1}]


def test_a_bad_layout_is_refused_before_the_run(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "cameras.yaml"
    bad.write_text(LAYOUT.replace("[0.7, 1.0], [0.3, 1.0]", "[0.3, 1.0], [0.7, 1.0]"))
    clip = tmp_path / "x.mp4"
    clip.write_bytes(b"not looked at")
    assert main(["run", str(clip), "--cameras", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "camera 'door', zone 'middle': the polygon crosses itself" in err
    assert not (tmp_path / "out").exists()


def test_the_report_from_the_stage_bucket_draws_lines_zones_and_counts(local_stack: Any, counted: dict[str, Any],
                                                                        tmp_path: Path, capsys: Any) -> None:
    """`vidsift report --stage local --since today` reads the local stack's buckets as a deployed
    stage's (the account from STS, the bucket names from the contract)."""
    today = _since()
    out = tmp_path / "stage-report"
    assert main(["report", "--stage", "local", "--since", today, "--camera", "door", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "2 crossing(s), 2 zone visit(s)" in said and "Report:" in said
    page = (out / "report.html").read_text()
    assert '<section id="lines">' in page and 'data-camera="door"' in page
    assert "entrance: 1 in, 1 out" in page and "middle: 2 visit(s), mean" in page
    assert 'marker-end="url(#arrow)"' in page and page.count("position(s)</title>") >= 10  # the heat map's cells
    assert 'href="data:image/jpeg;base64,' in page  # a best frame of the camera under the drawing
    assert counted["porch"] not in page  # --camera door: the porch video's rows were not copied


def test_the_recount_function_over_a_date_range(local_stack: Any, counted: dict[str, Any], tmp_path: Path) -> None:
    """functions/recount.py as `aws lambda invoke` runs it: the stored layout (here one with the
    zone moved off the walkers' path) over the days' tracks; a bad request fails with its reason."""
    from vidsift.core.errors import BadInputError
    from vidsift.local.dispatcher import invoke

    video = counted["door"]
    analytics = local_stack.names.bucket("analytics")
    moved = tmp_path / "moved.yaml"
    moved.write_text(LAYOUT.replace("[[0.3, 0.7], [0.7, 0.7], [0.7, 1.0], [0.3, 1.0]]",
                                    "[[0.3, 0.1], [0.7, 0.1], [0.7, 0.3], [0.3, 0.3]]"))
    # stored as for a deployed stage: the bucket named from the stage and the account STS gives
    assert main(["cameras", "put", str(moved), "--stage", "local"]) == 0
    assert counting.read_layout(analytics) == lay.loads(moved.read_text())
    assert main(["cameras", "put", str(tmp_path / "missing.yaml"), "--stage", "local"]) == 2  # nothing stored
    today = _since()
    try:
        result = invoke(local_stack.names.prefix, "recount", {"since": today, "cameras": ["door"]})
        assert result["videos"] == result["videos_with_layout"] >= 1 and result["zone_visits"] == 0
        assert _rows(local_stack, "zone_visits", video) == [] and len(_rows(local_stack, "crossings", video)) == 2
        for bad, why in [({"since": "yesterday"}, "YYYY-MM-DD"), ({"since": "2026-01-01", "until": "2025-01-01"},
                                                                 "before since"),
                         ({"since": "2025-01-01", "until": "2026-01-01"}, "at most 92"), ({}, "expected")]:
            with pytest.raises(BadInputError, match=why):
                invoke(local_stack.names.prefix, "recount", bad)
    finally:
        counting.put_layout(analytics, lay.loads(LAYOUT))
