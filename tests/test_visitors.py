"""Visitors (opt-in): the same person gets the same id across videos and cameras, a replay
indexes nothing twice, names show in past rows, forget erases one person and nobody else,
retention deletes and never reuses ids, bad input changes nothing; and off means off.

The runs go through ``vidsift run``'s own path (run_videos: the local stack, the handlers
unchanged, real face models); the commands through ``vidsift visitors`` (cli main)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vidsift import aws
from vidsift.cli.commands import main
from vidsift.core import visitors as rules
from vidsift.core.messages import FaceWork
from vidsift.local import visitors as local_visitors
from vidsift.local import warehouse as query
from vidsift.local.runner import run_videos
from vidsift.settings import Settings
from vidsift.stages import visitor_admin, visitors
from vidsift.storage.visitors import DynamoVisitorRegistry
from vidsift.testing.samples import Segment, make_video

# -------------------------------------------------------------------- the plain rules

FACE = {"record_id": "r1", "video_id": "v", "frame_index": 3, "face_index": 0, "bbox_left": 0.4, "bbox_top": 0.2,
        "bbox_width": 0.15, "bbox_height": 0.2, "confidence": 99.0, "pose_yaw": 5.0, "pose_pitch": -3.0,
        "sharpness": 60.0, "brightness": 50.0}


@pytest.mark.parametrize(("change", "why"), [
    ({"bbox_width": 0.05}, "px"), ({"confidence": 85.0}, "confidence"), ({"pose_yaw": -50.0}, "yaw"),
    ({"pose_pitch": -31.0}, "pitch"), ({"pose_pitch": 46.0}, "pitch"), ({"pose_yaw": None}, "pose"),
    ({"sharpness": 2.0}, "sharpness"), ({"brightness": 3.0}, "brightness"),
])
def test_quality_rules_follow_rekognitions_guidance(change: dict[str, Any], why: str) -> None:
    assert rules.unusable_reason(FACE, (640, 480), rules.QualityRules()) is None
    assert why in str(rules.unusable_reason(FACE | change, (640, 480), rules.QualityRules()))


def test_ids_and_external_image_ids_round_trip() -> None:
    vid = rules.visitor_id(42)
    ref = rules.face_ref("v", 3, 0)
    assert vid == "v000042" and rules.parse_external_image_id(rules.external_image_id(vid, ref)) == (vid, ref)
    assert rules.parse_external_image_id("Ada:20Lovelace") is None  # a known face, not a visitor's
    with pytest.raises(ValueError):
        rules.visitor_id(0)


def test_decide_prefers_own_face_then_best_match_and_ignores_gone_visitors() -> None:
    hits = [rules.SearchHit("v000002", "a" * 16, 95.0), rules.SearchHit("v000001", "b" * 16, 91.0)]
    assert rules.decide(hits, [], 90).visitor_id == "v000002"
    assert rules.decide(hits, [], 96).visitor_id is None
    assert rules.decide(hits, ["b" * 16], 90) == rules.Decision("v000001", 91.0, frozenset({"b" * 16}))
    assert rules.decide(hits, [], 90, gone={"v000002"}).visitor_id == "v000001"


def test_faces_to_index_fills_the_visitor_up_to_the_limit_never_twice() -> None:
    faces = [FACE | {"record_id": f"r{i}", "face_index": i, "bbox_width": 0.1 + i / 100} for i in range(4)]
    assert [f["face_index"] for f in rules.faces_to_index(faces, 3, 5)] == [3, 2]
    own = rules.face_ref("v", 3, 3)
    assert [f["face_index"] for f in rules.faces_to_index(faces, 0, 5, [own])] == [2, 1, 0]
    assert rules.faces_to_index(faces, 5, 5) == []


def test_a_visit_without_a_usable_face_gets_no_visitor_and_calls_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((480, 640, 3), np.uint8)).save(buf, "JPEG")
    monkeypatch.setattr(aws, "get_object_bytes", lambda bucket, key: buf.getvalue())
    monkeypatch.setattr(DynamoVisitorRegistry, "get", lambda self, key: (None, 0))
    monkeypatch.setattr(DynamoVisitorRegistry, "put",
                        lambda *a, **k: pytest.fail("no call for a visit without a usable face"))
    for name in ("search_visitor_faces", "index_faces", "collection_face_count", "put_object"):
        monkeypatch.setattr(aws, name, lambda *a, **k: pytest.fail("no call for a visit without a usable face"))
    settings = visitors.VisitorSettings(enabled=True, collection="c", table="t")
    small = FACE | {"track_id": "p001", "video_id": "v", "bbox_width": 0.05, "visitor_id": None}
    side = FACE | {"track_id": "p001", "video_id": "v", "pose_yaw": 70.0, "visitor_id": None, "face_index": 1}
    from vidsift.core.messages import FaceFrame, FaceWork
    from vidsift.core.records import FrameMeta

    meta = FrameMeta(video_id="v", source_bucket="raw", source_key="door.mp4", camera_id="door", frame_index=3,
                     frame_time_s=3.0, captured_at=None)
    work = FaceWork(video_id="v", tracks=[{"track_id": "p001", "camera_id": "door", "captured_at_first": None}],
                    frames=[FaceFrame(3, "v/000003.jpg", meta, [])])
    assert visitors.assign("people", "analytics", work, [small, side], settings) == {}
    assert small["visitor_id"] is None and side["visitor_id"] is None


def test_off_unless_opted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISITORS", raising=False)
    assert not Settings.from_env().visitors.enabled
    assert visitors.assign("p", "a", FaceWork(video_id="v", tracks=[{"track_id": "p001"}], frames=[]), [FACE]) == {}
    monkeypatch.setenv("VISITORS", "true")
    monkeypatch.delenv("VISITOR_COLLECTION", raising=False)
    with pytest.raises(Exception, match="VISITOR_COLLECTION"):
        visitors.VisitorSettings.from_mapping(os.environ)


# -------------------------------------------------------------------- through the pipeline


class Calls:
    """Counts the collection calls the pipeline makes (the handlers run in this process)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n: Counter[str] = Counter()
        for name in ("index_faces", "search_visitor_faces"):
            real = getattr(aws, name)

            def counted(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
                self.n[_name] += 1
                return _real(*a, **k)

            monkeypatch.setattr(aws, name, counted)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("visitor-videos")
    return {"door": make_video(d / "door.mp4", [Segment("astronaut", 2), Segment("grace_hopper", 2)], fps=5),
            "lobby": make_video(d / "lobby.mp4", [Segment("coffee", 1), Segment("astronaut", 2)], fps=5, seed=3),
            "again": make_video(d / "again.mp4", [Segment("astronaut", 2)], fps=5, seed=5)}


def tracks(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in sorted((out / "analytics" / "tracks").rglob("*.json"))
            for line in p.read_text().splitlines()]


def faces(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in sorted((out / "analytics" / "faces").rglob("*.json"))
            for line in p.read_text().splitlines()]


def snapshot(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def visited(videos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two runs into one output folder: the door video (astronaut, then Grace Hopper), then the
    lobby video on another camera (the astronaut again)."""
    out = tmp_path_factory.mktemp("visitors-out")
    with pytest.MonkeyPatch.context() as mp:
        calls = Calls(mp)
        for camera in ("door", "lobby"):
            report = run_videos([videos[camera]], out, progress=False, visitors=True, camera_id=camera)
            assert report.ok, [v.errors for v in report.videos]
        assert calls.n["index_faces"] >= 2
    yield out


def test_off_by_default_indexes_nothing(videos: dict[str, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls(monkeypatch)
    report = run_videos([videos["door"]], tmp_path, progress=False, camera_id="door")
    assert report.ok
    assert calls.n == Counter()
    rows = tracks(tmp_path)
    assert rows and all(r["visitor_id"] is None and r["visit_number"] is None for r in rows)
    assert all(f["visitor_id"] is None for f in faces(tmp_path))
    assert not (tmp_path / "visitors").exists()


def test_same_person_same_id_across_videos_and_cameras(visited: Path) -> None:
    by_camera: dict[str, list[dict[str, Any]]] = {}
    for r in tracks(visited):
        by_camera.setdefault(r["camera_id"], []).append(r)
    door = sorted(by_camera["door"], key=lambda r: r["first_seen_s"])
    lobby = [r for r in by_camera["lobby"] if r["visitor_id"]]
    assert [r["visitor_id"] for r in door] == ["v000001", "v000002"]  # different people, different ids
    assert [r["visit_number"] for r in door] == [1, 1]
    assert len(lobby) == 1 and lobby[0]["visitor_id"] == "v000001" and lobby[0]["visit_number"] == 2
    assert lobby[0]["visitor_first_seen"] == door[0]["visitor_first_seen"]
    for f in faces(visited):  # faces rows carry their visit's visitor
        owner = next(r for r in tracks(visited) if r["video_id"] == f["video_id"] and r["track_id"] == f["track_id"])
        assert f["visitor_id"] == owner["visitor_id"]


def test_a_replayed_video_indexes_nothing_twice(visited: Path, videos: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    before = {(r["video_id"], r["track_id"]): r["visitor_id"] for r in tracks(visited)}
    faces_before = len(local_visitors.LocalStore(visited).faces())
    calls = Calls(monkeypatch)
    assert run_videos([videos["door"]], visited, progress=False, visitors=True, camera_id="door").ok
    assert calls.n["index_faces"] == 0 and calls.n["search_visitor_faces"] == 0
    assert len(local_visitors.LocalStore(visited).faces()) == faces_before
    assert {(r["video_id"], r["track_id"]): r["visitor_id"] for r in tracks(visited)} == before


def test_list_shows_visits_and_thumbnails(visited: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["visitors", "--out", str(visited), "list", "--format", "json"]) == 0
    rows = {r["visitor_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["v000001"]["visits"] == 2 and rows["v000001"]["returning"]
    assert rows["v000001"]["cameras"] == ["door", "lobby"]
    assert not rows["v000002"]["returning"]
    assert Path(rows["v000001"]["thumbnail"]).read_bytes()[:3] == b"\xff\xd8\xff"


def test_bad_input_is_one_error_and_changes_nothing(visited: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(visited)
    for argv in (["name", "v000999", "Ada"], ["name", "v000001", "   "], ["forget", "v000999"],
                 ["forget", "not-an-id"], ["promote", "v000999", "--name", "Ada"]):
        assert main(["visitors", "--out", str(visited), *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("vidsift visitors: "), err
    assert snapshot(visited) == before


def test_a_name_shows_in_past_rows(visited: Path) -> None:
    assert main(["visitors", "--out", str(visited), "name", "v000001", "Eileen"]) == 0
    _, rows = query.run(visited, "SELECT t.camera_id, n.name FROM tracks t JOIN visitor_names n USING (visitor_id) "
                                 "ORDER BY 1")
    assert rows == [("door", "Eileen"), ("lobby", "Eileen")]


def test_named_visitor_queries_run(visited: Path) -> None:
    from vidsift.local.warehouse import run

    sql = Path(__file__).resolve().parents[1] / "vidsift" / "sql"
    _, rows = run(visited, (sql / "visitors_on_several_cameras.sql").read_text())
    assert [r[0] for r in rows] == ["v000001"]
    _, rows = run(visited, (sql / "visit_frequency.sql").read_text())
    assert dict((r[0], r[1]) for r in rows) == {1: 1, 2: 1}
    _, rows = run(visited, (sql / "new_vs_returning_visitors.sql").read_text())
    assert sum(r[1] for r in rows) == 2 and sum(r[2] for r in rows) == 1


def test_forget_erases_one_person_and_nobody_else(visited: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(visited, out)
    store = local_visitors.LocalStore(out)
    t0, f0 = tracks(out), faces(out)
    mine_t = sum(r["visitor_id"] == "v000001" for r in t0)
    mine_f = sum(r["visitor_id"] == "v000001" for r in f0)
    assert mine_t == 2 and mine_f >= 2
    others = [r for r in t0 if r["visitor_id"] != "v000001"]
    assert main(["visitors", "--out", str(out), "forget", "v000001"]) == 0
    assert len(tracks(out)) == len(t0) - mine_t and len(faces(out)) == len(f0) - mine_f
    assert [r for r in tracks(out) if r["visitor_id"] != "v000001"] == others  # everyone else intact
    assert not any(rules.parse_external_image_id(f["ExternalImageId"])[0] == "v000001" for f in store.faces())
    assert any(rules.parse_external_image_id(f["ExternalImageId"])[0] == "v000002" for f in store.faces())
    assert not (out / "analytics" / "visitor-faces" / "v000001").exists()
    assert "v000001" not in visitor_admin.names(store)
    (audit,) = (out / "analytics" / "visitor-audit").glob("*v000001-forget.json")
    record = json.loads(audit.read_text())
    assert record["rows_deleted"] == {"tracks": mine_t, "faces": mine_f} and record["face_vectors_deleted"] >= 1
    assert "ExternalImageId" not in audit.read_text() and "descriptor" not in audit.read_text()
    assert main(["visitors", "--out", str(out), "forget", "v000001"]) == 2  # once


def test_retention_deletes_and_never_reuses_ids(visited: Path, videos: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(visited, out)
    store = local_visitors.LocalStore(out)
    later = datetime.now(UTC) + timedelta(days=31)
    assert sorted(visitor_admin.expire(store, 30, now=later)) == ["v000001", "v000002"]
    assert store.faces() == []
    assert {v["status"] for v in visitor_admin.list_visitors(store)} == {"expired"}
    # The astronaut comes back: a new visitor, with an id never given before.
    old = {r["video_id"] for r in tracks(out)}
    assert run_videos([videos["again"]], out, progress=False, visitors=True, camera_id="lobby").ok
    new = [r for r in tracks(out) if r["video_id"] not in old]
    assert [(r["visitor_id"], r["visit_number"]) for r in new] == [("v000003", 1)]
    assert {r["visitor_id"] for r in tracks(out) if r["video_id"] in old} == {"v000001", "v000002"}  # rows stay


def test_report_lists_visitors_with_thumbnails_returning_marked(visited: Path) -> None:
    from vidsift.report.visitors import section

    page = section(visited)
    assert page.count("<tr") == 1 + 2 and page.count('class="returning"') == 1
    assert "data:image/jpeg;base64," in page and "v000001" in page and "(returning)" in page
