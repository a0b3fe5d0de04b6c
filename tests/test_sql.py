"""The Athena named queries (vidsift/sql/*.sql) run in DuckDB and answer correctly.

The same files are deployed as AWS::Athena::NamedQuery (Trino) and run locally by
`vidsift query` (DuckDB), so they keep to SQL both engines share. Athena cannot run
here; these tests prove the DuckDB side on tables built from the contract's columns and
check each query's answer on a small synthetic data set, including rows outside the
7-day window that every query must leave out.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from vidsift import contract

SQL_DIR = Path(__file__).resolve().parents[1] / "vidsift" / "sql"
SQL_FILES = sorted(SQL_DIR.glob("*.sql"))
DUCK_TYPES = {"string": "VARCHAR", "int": "INTEGER", "double": "DOUBLE", "boolean": "BOOLEAN"}
TODAY = datetime.now(UTC).date()
OLD = TODAY - timedelta(days=30)


def _iso(d: date, hh: int, mm: int, ss: int) -> str:
    return f"{d.isoformat()}T{hh:02d}:{mm:02d}:{ss:02d}.000Z"


def _row(table: str, **values: Any) -> dict[str, Any]:
    """A record with every contract column (None where the test does not care)."""
    row = {c: None for c in contract.columns(table)}
    unknown = set(values) - set(row)
    assert not unknown, f"not {table} columns: {unknown}"
    row.update(values)
    return row


def _people(video: str, camera: str, frame: int, count: int, conf: float, captured: str | None, day: date) -> dict:
    return _row("people", record_id=f"p-{video}-{frame}", video_id=video, source_bucket="raw",
                source_key=f"uploads/{video}.mp4", camera_id=camera, frame_index=frame, frame_time_s=float(frame),
                frame_key=f"{video}/{frame:06d}.jpg", captured_at=captured, person_count=count,
                max_confidence=conf if count else None, boxes="[]", detector="test",
                processed_at=_iso(day, 23, 0, frame), dt=day.isoformat())


def _face(video: str, frame: int, i: int, *, emotion: str, gender: str, ages: tuple[int, int], smile: bool,
          day: date) -> dict:
    return _row("faces", record_id=f"f-{video}-{frame}-{i}", video_id=video, source_key=f"uploads/{video}.mp4",
                camera_id="cam-a", frame_index=frame, frame_time_s=float(frame), frame_key=f"{video}/{frame:06d}.jpg",
                captured_at=None, face_index=i, confidence=99.0, bbox_left=0.1, bbox_top=0.1, bbox_width=0.1,
                bbox_height=0.2, age_low=ages[0], age_high=ages[1], gender=gender, gender_confidence=99.0,
                top_emotion=emotion, emotions=json.dumps({emotion: 90.0}), smile=smile, eyeglasses=False,
                sunglasses=False, beard=False, mustache=False, eyes_open=True, mouth_open=False, pose_roll=0.0,
                pose_yaw=0.0, pose_pitch=0.0, brightness=80.0, sharpness=60.0, analyzer="test",
                processed_at=_iso(day, 23, 30, i), dt=day.isoformat())


PEOPLE = [
    # cam-a, minute 10:00: 3 frames (0, 2, 4 people); minute 10:01: 1 frame (1 person)
    _people("va", "cam-a", 0, 0, 0.0, _iso(TODAY, 10, 0, 5), TODAY),
    _people("va", "cam-a", 1, 2, 0.91, _iso(TODAY, 10, 0, 20), TODAY),
    _people("va", "cam-a", 2, 4, 0.80, _iso(TODAY, 10, 0, 40), TODAY),
    _people("va", "cam-a", 3, 1, 0.70, _iso(TODAY, 10, 1, 0), TODAY),
    # cam-b: no recording time, so it counts at its processing time (23:00 today)
    _people("vb", "cam-b", 0, 4, 0.95, None, TODAY),
    # a month old: outside every query's 7-day window
    _people("vold", "cam-a", 0, 9, 0.99, _iso(OLD, 9, 0, 0), OLD),
]
FACES = [
    _face("va", 1, 0, emotion="HAPPY", gender="Female", ages=(20, 28), smile=True, day=TODAY),
    _face("va", 1, 1, emotion="CALM", gender="Male", ages=(30, 38), smile=False, day=TODAY),
    _face("va", 2, 0, emotion="HAPPY", gender="Female", ages=(24, 30), smile=True, day=TODAY),
    _face("vb", 0, 0, emotion="SAD", gender="Male", ages=(41, 49), smile=False, day=TODAY),
    _face("vold", 0, 0, emotion="ANGRY", gender="Male", ages=(60, 70), smile=False, day=OLD),
]


def _again(row: dict[str, Any]) -> dict[str, Any]:
    """The same record delivered a second time (Firehose delivers at least once; a retried
    invocation resends): same record_id, a later processed_at. Every answer below counts it once."""
    return row | {"processed_at": row["processed_at"][:11] + "23:59:59.000Z"}


PEOPLE += [_again(PEOPLE[2]), _again(PEOPLE[4])]
FACES += [_again(FACES[0]), _again(FACES[3])]


def _track(video: str, camera: str, track: str, first: float, last: float, *, start: tuple[int, int, int] | None,
           day: date, faces: int = 0, name: str | None = None, ages: tuple[int, int] | None = None,
           gender: str | None = None, emotion: str | None = None) -> dict:
    """One visit. ``start``: the wall clock (h, m, s) of the video's time 0 (captured_at_first is
    it plus ``first``), None for a video uploaded without a recording time."""
    def at(t: float) -> str | None:
        if start is None:
            return None
        h, m, s = start
        clock = datetime(day.year, day.month, day.day, h, m, s, tzinfo=UTC) + timedelta(seconds=t)
        return clock.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    frame = int(first)
    return _row("tracks", record_id=f"t-{video}-{track}", track_id=track, video_id=video, camera_id=camera,
                source_key=f"uploads/{video}.mp4", first_seen_s=first, last_seen_s=last, duration_s=last - first,
                captured_at_first=at(first), captured_at_last=at(last), frames=int(last - first) + 1,
                max_box_height=0.5, best_frame_key=f"{video}/{frame:06d}.jpg",
                best_box=json.dumps({"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.5, "confidence": 0.9}),
                path=json.dumps([[first, 0.2, 0.35, 0.5], [last, 0.3, 0.35, 0.5]]), face_frames=min(3, faces + 1),
                faces=faces, matched_name=name, match_similarity=97.5 if name else None,
                age_low=ages[0] if ages else None, age_high=ages[1] if ages else None, gender=gender,
                top_emotion=emotion, gap_frames=0, processed_at=_iso(day, 23, 10, frame % 60), dt=day.isoformat())


TRACKS = [
    # va (cam-a), recorded from 10:59:00. In view together: p001 [0, 8], p002 [5, 40], p003 [6, 7]
    # (three at 6 s, the peak), then p002 and p005 at 40 s, p004 and p005 at 45-50 s, p004 and p006.
    _track("va", "cam-a", "p001", 0.0, 8.0, start=(10, 59, 0), day=TODAY),
    _track("va", "cam-a", "p002", 5.0, 40.0, start=(10, 59, 0), day=TODAY, faces=2, name="alice", ages=(30, 38),
           gender="Female", emotion="HAPPY"),
    _track("va", "cam-a", "p003", 6.0, 7.0, start=(10, 59, 0), day=TODAY),
    _track("va", "cam-a", "p004", 45.0, 400.0, start=(10, 59, 0), day=TODAY, faces=1, ages=(20, 26),
           gender="Male", emotion="CALM"),
    _track("va", "cam-a", "p005", 40.0, 50.0, start=(10, 59, 0), day=TODAY),
    # began at 11:00:10: the next hour
    _track("va", "cam-a", "p006", 70.0, 75.0, start=(10, 59, 0), day=TODAY),
    # vb (cam-b) has no recording time: its visits count at their processing time (23:10 today)
    _track("vb", "cam-b", "p001", 0.0, 20.0, start=None, day=TODAY),
    _track("vb", "cam-b", "p002", 10.0, 30.0, start=None, day=TODAY, faces=1, gender="Male", ages=(41, 49),
           emotion="SAD"),
    # a month old, longer and more crowded than anything above: outside every 7-day window
    *[_track("vold", "cam-a", f"p00{i}", 0.0, 9000.0 + i, start=(9, 0, 0), day=OLD, faces=1, emotion="ANGRY")
      for i in range(1, 6)],
]
# Visitors (opt-in): va's p002 comes back as vb's p002 on another camera (v000001's 2nd visit);
# va's p004 is a new visitor; a month-old visit of another is outside the window.
for _i, (_vid, _n) in {1: ("v000001", 1), 3: ("v000002", 1), 7: ("v000001", 2), 8: ("v000009", 1)}.items():
    TRACKS[_i].update(visitor_id=_vid, visit_number=_n, visitor_first_seen=TRACKS[_i]["processed_at"])
TRACKS += [_again(TRACKS[1]), _again(TRACKS[3]), _again(TRACKS[6])]


def _crossing(video: str, camera: str, track: str, line: str, direction: str, t: float,
              start: tuple[int, int, int] | None, day: date) -> dict:
    at = (datetime(day.year, day.month, day.day, *start, tzinfo=UTC) + timedelta(seconds=t)
          ).strftime("%Y-%m-%dT%H:%M:%S.000Z") if start else None
    return _row("crossings", record_id=f"c-{video}-{track}-{line}-{t}", video_id=video, camera_id=camera,
                track_id=track, line=line, direction=direction, time_s=t, captured_at=at, dt=day.isoformat())


def _stay(video: str, camera: str, track: str, zone: str, entered: float, left: float,
          start: tuple[int, int, int] | None, day: date) -> dict:
    at = (datetime(day.year, day.month, day.day, *start, tzinfo=UTC) + timedelta(seconds=entered)
          ).strftime("%Y-%m-%dT%H:%M:%S.000Z") if start else None
    return _row("zone_visits", record_id=f"z-{video}-{track}-{zone}-{entered}", video_id=video, camera_id=camera,
                track_id=track, zone=zone, entered_s=entered, left_s=left, dwell_s=left - entered,
                captured_at_entered=at, dt=day.isoformat())


CROSSINGS = [
    # va (cam-a) recorded from 10:59:00: door: 3 in and 1 out in hour 10, 1 in and 2 out in hour 11
    _crossing("va", "cam-a", "p001", "door", "in", 2.0, (10, 59, 0), TODAY),
    _crossing("va", "cam-a", "p002", "door", "in", 6.0, (10, 59, 0), TODAY),
    _crossing("va", "cam-a", "p003", "door", "in", 7.0, (10, 59, 0), TODAY),
    _crossing("va", "cam-a", "p001", "door", "out", 30.0, (10, 59, 0), TODAY),
    _crossing("va", "cam-a", "p004", "door", "in", 70.0, (10, 59, 0), TODAY),
    _crossing("va", "cam-a", "p002", "door", "out", 80.0, (10, 59, 0), TODAY),
    _crossing("va", "cam-a", "p003", "door", "out", 90.0, (10, 59, 0), TODAY),
    # another line of the same camera
    _crossing("va", "cam-a", "p002", "gate", "out", 20.0, (10, 59, 0), TODAY),
    # vb (cam-b): no recording time, counted under its day; not in the net occupancy
    _crossing("vb", "cam-b", "p001", "door", "in", 3.0, None, TODAY),
    # a month old
    *[_crossing("vold", "cam-a", f"p00{i}", "door", "in", float(i), (9, 0, 0), OLD) for i in range(1, 6)],
]
CROSSINGS += [CROSSINGS[0] | {"dt": (TODAY - timedelta(days=1)).isoformat()}]  # a recount's older copy
ZONE_VISITS = [
    # counter (cam-a): stays of 5, 12, 45 s beginning in hour 10 (two) and 11 (one); queue: 200 s
    _stay("va", "cam-a", "p001", "counter", 10.0, 15.0, (10, 59, 0), TODAY),
    _stay("va", "cam-a", "p002", "counter", 20.0, 32.0, (10, 59, 0), TODAY),
    _stay("va", "cam-a", "p004", "counter", 65.0, 110.0, (10, 59, 0), TODAY),
    _stay("va", "cam-a", "p002", "queue", 5.0, 205.0, (10, 59, 0), TODAY),
    # vb: no recording time: in the dwell distribution, not in the busiest hour
    _stay("vb", "cam-b", "p001", "till", 1.0, 400.0, None, TODAY),
    *[_stay("vold", "cam-a", f"p00{i}", "counter", 0.0, 9000.0, (9, 0, 0), OLD) for i in range(1, 6)],
]
ZONE_VISITS += [ZONE_VISITS[1] | {"dt": (TODAY - timedelta(days=1)).isoformat()}]
TABLES = {"people": PEOPLE, "faces": FACES, "tracks": TRACKS, "crossings": CROSSINGS, "zone_visits": ZONE_VISITS}


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for table, rows in TABLES.items():
        types = contract.column_types(table)
        cols = contract.columns(table)
        con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {DUCK_TYPES[types[c]]}' for c in cols)})")
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in cols)})",
                        [[r[c] for c in cols] for r in rows])
    return con


def _query(con: duckdb.DuckDBPyConnection, name: str) -> list[dict[str, Any]]:
    cur = con.execute((SQL_DIR / f"{name}.sql").read_text())
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _header(path: Path) -> tuple[str, str]:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("-- name: ") and lines[1].startswith("-- description: "), path.name
    return lines[0].removeprefix("-- name: ").strip(), lines[1].removeprefix("-- description: ").strip()


def test_each_file_is_one_named_portable_query() -> None:
    assert len(SQL_FILES) >= 9
    names = [_header(p)[0] for p in SQL_FILES]
    assert len(set(names)) == len(names)
    for path in SQL_FILES:
        text = path.read_text()
        # ${...} would be taken for a Serverless variable when serverless.yml loads the file.
        assert "${" not in text, path.name
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()
        assert ";" not in body, f"{path.name}: one statement, no semicolon (Athena named query)"
        assert body.upper().startswith(("SELECT", "WITH")), path.name
        # Each query counts a record delivered twice once (see _again).
        assert "PARTITION BY record_id" in body or "DISTINCT" in body, path.name


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.stem)
def test_runs_in_duckdb_on_contract_tables(path: Path) -> None:
    rows = _query(_connect(), path.stem)
    assert rows, f"{path.name} found nothing in the synthetic data"
    flat = json.dumps(rows, default=str)
    assert "vold" not in flat and "ANGRY" not in flat and "9000" not in flat, \
        f"{path.name} reads outside its 7-day window"


def test_people_per_minute() -> None:
    rows = _query(_connect(), "people_per_minute")
    by_key = {(r["camera_id"], r["minute_utc"]): r for r in rows}
    minute = f"{TODAY.isoformat()}T10:00"
    assert by_key[("cam-a", minute)]["frames"] == 3
    assert by_key[("cam-a", minute)]["max_people"] == 4
    assert by_key[("cam-a", minute)]["mean_people"] == pytest.approx(2.0)
    assert by_key[("cam-a", f"{TODAY.isoformat()}T10:01")]["max_people"] == 1
    assert by_key[("cam-b", f"{TODAY.isoformat()}T23:00")]["frames"] == 1
    assert [r["minute_utc"] for r in rows] == sorted(r["minute_utc"] for r in rows)


def test_frames_with_most_people() -> None:
    rows = _query(_connect(), "frames_with_most_people")
    assert [(r["video_id"], r["frame_index"]) for r in rows] == [("vb", 0), ("va", 2), ("va", 1), ("va", 3)]


def test_faces_by_emotion() -> None:
    rows = _query(_connect(), "faces_by_emotion")
    assert [(r["emotion"], r["faces"], r["smiling"]) for r in rows] == [("HAPPY", 2, 2), ("CALM", 1, 0),
                                                                         ("SAD", 1, 0)]
    assert sum(float(r["pct_of_faces"]) for r in rows) == pytest.approx(100.0)


def test_age_gender_distribution() -> None:
    rows = _query(_connect(), "age_gender_distribution")
    assert [(r["gender"], r["age_from"], r["age_to"], r["faces"]) for r in rows] == [
        ("Female", 20, 29, 2), ("Male", 30, 39, 1), ("Male", 40, 49, 1)]


def test_latest_detections() -> None:
    rows = _query(_connect(), "latest_detections")
    assert [(r["video_id"], r["frame_index"], r["faces"]) for r in rows] == [
        ("vb", 0, 1), ("va", 3, 0), ("va", 2, 1), ("va", 1, 2)]


def test_tables_are_the_contracts() -> None:
    """The synthetic data covers every table the pipeline writes (tracks, crossings and zone visits included)."""
    assert set(TABLES) == set(contract.ALL_TABLES)


def test_unique_visitors_per_hour() -> None:
    rows = _query(_connect(), "unique_visitors_per_hour")
    got = [(r["camera_id"], r["hour_utc"], r["visitors"], r["with_face"], r["known_people"]) for r in rows]
    # p002 and p004 delivered twice, vb's p001 too: each visit counted once.
    assert got == [("cam-a", f"{TODAY.isoformat()}T10", 5, 2, 1), ("cam-a", f"{TODAY.isoformat()}T11", 1, 0, 0),
                   ("cam-b", f"{TODAY.isoformat()}T23", 2, 1, 0)]
    first = rows[0]
    assert first["mean_stay_s"] == pytest.approx(round((8 + 35 + 1 + 355 + 10) / 5, 1))
    assert first["longest_stay_s"] == pytest.approx(355.0)


def test_dwell_time_distribution() -> None:
    rows = _query(_connect(), "dwell_time_distribution")
    bands = ["<10 s", "10-30 s", "30-60 s", "1-5 min", ">5 min"]
    assert [r["dwell"] for r in rows] == bands * 2
    a = [r["visits"] for r in rows if r["camera_id"] == "cam-a"]
    b = [r["visits"] for r in rows if r["camera_id"] == "cam-b"]
    # cam-a stays: 8, 35, 1, 355, 10 (a band starts at its lower bound), 5. cam-b: 20, 20.
    assert a == [3, 1, 1, 0, 1]
    assert b == [0, 2, 0, 0, 0]
    assert [float(r["pct_of_camera"]) for r in rows if r["camera_id"] == "cam-a"] == [50.0, 16.7, 16.7, 0.0, 16.7]
    assert [float(r["pct_of_camera"]) for r in rows if r["camera_id"] == "cam-b"] == [0.0, 100.0, 0.0, 0.0, 0.0]


def test_longest_visits() -> None:
    rows = _query(_connect(), "longest_visits")
    assert [(r["video_id"], r["track_id"], r["duration_s"]) for r in rows] == [
        ("va", "p004", 355.0), ("va", "p002", 35.0), ("vb", "p001", 20.0), ("vb", "p002", 20.0),
        ("va", "p005", 10.0), ("va", "p001", 8.0), ("va", "p006", 5.0), ("va", "p003", 1.0)]
    top, alice = rows[0], rows[1]
    assert (top["age_low"], top["age_high"], top["gender"], top["top_emotion"], top["matched_name"]) == (
        20, 26, "Male", "CALM", None)
    assert (alice["matched_name"], alice["match_similarity"], alice["gender"], alice["top_emotion"]) == (
        "alice", 97.5, "Female", "HAPPY")
    assert top["seen_at"] == _iso(TODAY, 10, 59, 45)
    assert rows[2]["seen_at"] == rows[2]["seen_at"][:11] + "23:10:00.000Z"  # vb: its processing time
    assert top["best_frame_key"] == "va/000045.jpg"


def test_peak_occupancy() -> None:
    rows = _query(_connect(), "peak_occupancy")
    assert [(r["camera_id"], r["video_id"], r["peak_people"], r["peak_at_s"], r["visitors"]) for r in rows] == [
        ("cam-a", "va", 3, 6.0, 6), ("cam-b", "vb", 2, 10.0, 2)]
    assert rows[0]["peak_captured_at"] == _iso(TODAY, 10, 59, 6)
    assert rows[1]["peak_captured_at"] is None


def test_peak_occupancy_counts_people_seen_in_the_same_frame_and_ties() -> None:
    """Closed intervals: one leaving at 10 s and one arriving at 10 s were both in the 10 s
    frame. Two starting at once count as two. The earliest of equal peaks is the one shown."""
    con = duckdb.connect()
    rows = [_track("vc", "cam-c", "p001", 0.0, 10.0, start=None, day=TODAY),
            _track("vc", "cam-c", "p002", 10.0, 12.0, start=None, day=TODAY),
            _track("vc", "cam-c", "p003", 20.0, 30.0, start=None, day=TODAY),
            _track("vc", "cam-c", "p004", 20.0, 25.0, start=None, day=TODAY)]
    types, cols = contract.column_types("tracks"), contract.columns("tracks")
    con.execute(f"CREATE TABLE tracks ({', '.join(f'{c} {DUCK_TYPES[types[c]]}' for c in cols)})")
    con.executemany(f"INSERT INTO tracks VALUES ({', '.join('?' for _ in cols)})",
                    [[r[c] for c in cols] for r in [*rows, _again(rows[3])]])
    got = _query(con, "peak_occupancy")
    assert [(r["video_id"], r["peak_people"], r["peak_at_s"], r["visitors"]) for r in got] == [("vc", 2, 10.0, 4)]


def test_same_answers_through_vidsift_query(tmp_path: Path) -> None:
    """`vidsift query` reads Firehose-style JSON lines under analytics/<table>/dt=.../:
    the queries give the same answers there as on typed tables."""
    from vidsift.local import warehouse as query

    for table, rows in TABLES.items():
        for day in {r["dt"] for r in rows}:
            folder = tmp_path / "analytics" / table / f"dt={day}"
            folder.mkdir(parents=True)
            lines = [json.dumps({k: v for k, v in r.items() if k != "dt"}) for r in rows if r["dt"] == day]
            (folder / "part-0.json").write_text("\n".join(lines) + "\n")
    con = _connect()
    for path in SQL_FILES:
        names, got = query.run(tmp_path, path.read_text())
        cur = con.execute(path.read_text())
        assert names == [d[0] for d in cur.description], path.name
        assert got == cur.fetchall(), path.name


# -------------------------------------------------------------------- lines and zones


def test_crossings_per_hour() -> None:
    rows = _query(_connect(), "crossings_per_hour")
    day = TODAY.isoformat()
    assert [(r["camera_id"], r["line"], r["hour_utc"], r["people_in"], r["people_out"]) for r in rows] == [
        ("cam-b", "door", day, 1, 0),  # no recording time: under its day, which sorts first
        ("cam-a", "door", f"{day}T10", 3, 1), ("cam-a", "gate", f"{day}T10", 0, 1),
        ("cam-a", "door", f"{day}T11", 1, 2)]


def test_net_occupancy() -> None:
    rows = _query(_connect(), "net_occupancy")
    assert [(r["camera_id"], r["line"], r["hour_utc"], r["people_in"], r["people_out"], r["net_occupancy"])
            for r in rows] == [("cam-a", "door", "10", 3, 1, 2), ("cam-a", "door", "11", 1, 2, 1),
                               ("cam-a", "gate", "10", 0, 1, -1)]
    assert {r["day_utc"] for r in rows} == {TODAY.isoformat()}


def test_zone_dwell_distribution() -> None:
    rows = _query(_connect(), "zone_dwell_distribution")
    got: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        got.setdefault((r["camera_id"], r["zone"]), []).append(r["visits"])
    assert got == {("cam-a", "counter"): [1, 1, 1, 0, 0], ("cam-a", "queue"): [0, 0, 0, 1, 0],
                   ("cam-b", "till"): [0, 0, 0, 0, 1]}
    counter = [r for r in rows if r["zone"] == "counter"]
    assert [float(r["pct_of_zone"]) for r in counter] == [33.3, 33.3, 33.3, 0.0, 0.0]
    assert float(counter[0]["mean_dwell_s"]) == pytest.approx(round((5 + 12 + 45) / 3, 1))


def test_busiest_hour_per_zone() -> None:
    rows = _query(_connect(), "busiest_hour_per_zone")
    assert [(r["camera_id"], r["zone"], r["hour_utc"], r["visits"]) for r in rows] == [
        ("cam-a", "counter", "10", 2), ("cam-a", "queue", "10", 1)]
    assert float(rows[0]["mean_dwell_s"]) == pytest.approx(8.5)
def test_new_vs_returning_visitors_per_day() -> None:
    rows = _query(_connect(), "new_vs_returning_visitors")
    assert [(r["new_visitors"], r["returning_visitors"], r["visits"], r["visits_without_visitor"]) for r in rows] == [
        (2, 1, 8, 5)]


def test_visit_frequency_distribution() -> None:
    rows = _query(_connect(), "visit_frequency")
    assert [(r["visits"], r["visitors"], r["percent"]) for r in rows] == [(1, 1, 50.0), (2, 1, 50.0)]


def test_visitors_on_several_cameras() -> None:
    rows = _query(_connect(), "visitors_on_several_cameras")
    assert [(r["visitor_id"], r["cameras"], r["first_camera"], r["last_camera"], r["visits"]) for r in rows] == [
        ("v000001", 2, "cam-a", "cam-b", 2)]
