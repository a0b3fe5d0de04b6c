"""Many short videos dropped at once, handled by concurrent invocations (the dispatcher's
thread pool, each stage up to its contract max_concurrency), then proved complete: per
video, sampled frames = frame objects = ``people`` rows, and per frame with people, ``faces``
rows = the faces the analyser finds when asked again (DetectFaces on the people frame,
filtered as analyze_faces filters); no record twice, none missing, nothing in a DLQ. Then
every message each queue received is sent again and the tables must not change.

``test_load_small`` (8 videos, concurrency 4) runs in ``make test``; ``test_load_soak``
(``VIDSIFT_LOAD_VIDEOS``, default 60, at ``VIDSIFT_LOAD_CONCURRENCY``, default 8) in
``make soak``. Throughput is printed, never asserted.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vidsift import aws, contract
from vidsift.core import ids
from vidsift.core.keys import frame_key, summary_key
from vidsift.core.records import keep_face
from vidsift.local.dispatcher import Dispatcher, StageStats
from vidsift.local.results import analytics_rows
from vidsift.local.stack import LocalStack
from vidsift.settings import Settings
from vidsift.testing.faults import jpeg
from vidsift.testing.localcheck import drain_dlq
from vidsift.testing.samples import Segment, make_video

#: One second per photo: 3 frames per video at 1 fps, 0 to 3 of them with people.
TEMPLATES = (("astronaut", "coffee", "grace_hopper"), ("camera", "chelsea", "rocket"),
             ("coffee", "coffee", "astronaut"), ("grace_hopper", "camera", "astronaut"),
             ("rocket", "chelsea", "coffee"), ("astronaut", "astronaut", "astronaut"))


class RecordingDispatcher(Dispatcher):
    """The dispatcher, remembering every message body each queue handed out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bodies: dict[str, list[str]] = defaultdict(list)

    def _receive(self, stage: str) -> list[dict[str, Any]]:
        messages = super()._receive(stage)
        self.bodies[stage].extend(m["Body"] for m in messages)
        return messages


@dataclass
class Check:
    """What the consistency check found over a run's videos."""

    videos: int = 0
    frames: int = 0
    frames_with_people: int = 0
    faces: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    assert Dispatcher(local_stack).run_until_idle(timeout_s=60)  # S3's test events
    yield local_stack


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("load")
    return [make_video(folder / f"t{i}.mp4", [Segment(p, 1) for p in photos], fps=10, width=320, height=240,
                       seed=i) for i, photos in enumerate(TEMPLATES)]


def drop(stack: LocalStack, templates: list[Path], prefix: str, count: int) -> list[str]:
    """Upload ``count`` videos at once (a few threads, as many cameras would)."""
    keys = [f"uploads/{prefix}/cam{i % 7}/clip {i:03d}.mp4" for i in range(count)]
    raw = stack.names.bucket("raw")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda ik: aws.client("s3").upload_file(str(templates[ik[0] % len(templates)]), raw, ik[1]),
                      enumerate(keys)))
    return keys


def table_ids(stack: LocalStack, table: str, keys: set[str]) -> Counter[str]:
    return Counter(r["record_id"] for r in analytics_rows(stack, table) if r["source_key"] in keys)


def check(stack: LocalStack, keys: list[str]) -> Check:
    """Per video: frames sampled (summary) = frame objects = people rows, indices 0..n-1; per
    frame with people: faces rows = faces DetectFaces finds now and analyze_faces would keep."""
    s3, raw = aws.client("s3"), stack.names.bucket("raw")
    frames_bucket, people_bucket = stack.names.bucket("frames"), stack.names.bucket("people")
    settings = Settings.from_env()
    wanted = set(keys)
    people = [r for r in analytics_rows(stack, "people") if r["source_key"] in wanted]
    faces = [r for r in analytics_rows(stack, "faces") if r["source_key"] in wanted]
    out = Check(videos=len(keys))
    out.duplicated = sorted(k for k, n in Counter(r["record_id"] for r in people + faces).items() if n > 1)
    people_by_video: dict[str, dict[int, dict]] = defaultdict(dict)
    for r in people:
        people_by_video[r["video_id"]][r["frame_index"]] = r
    faces_by_frame = Counter((r["video_id"], r["frame_index"]) for r in faces)
    tracks_by_video: dict[str, list[dict]] = defaultdict(list)
    for r in analytics_rows(stack, "tracks"):
        if r["source_key"] in wanted:
            tracks_by_video[r["video_id"]].append(r)
    for key in keys:
        video = ids.video_id(raw, key, s3.head_object(Bucket=raw, Key=key)["ETag"])
        try:
            summary = json.loads(s3.get_object(Bucket=frames_bucket, Key=summary_key(video))["Body"].read())
        except s3.exceptions.NoSuchKey:
            out.lost.append(f"{key}: no summary")
            continue
        n = summary["frames_kept"]
        listing = s3.list_objects_v2(Bucket=frames_bucket, Prefix=f"{video}/").get("Contents", [])
        objects = [o["Key"] for o in listing if o["Key"].endswith(".jpg")]
        rows = people_by_video[video]
        out.frames += n
        if sorted(objects) != [frame_key(video, i) for i in range(n)]:
            out.lost.append(f"{key}: {len(objects)} frame objects for {n} frames sampled")
        if sorted(rows) != list(range(n)):
            out.lost.append(f"{key}: people rows for frames {sorted(rows)}, sampled {n}")
        for index, row in rows.items():
            if not row["person_count"]:
                if faces_by_frame[(video, index)]:
                    out.duplicated.append(f"{key} frame {index}: faces rows without people")
                continue
            out.frames_with_people += 1
            if not faces_by_frame[(video, index)]:
                continue  # not a frame chosen for face analysis (faces once per visit)
            details = aws.detect_faces(people_bucket, frame_key(video, index))["FaceDetails"]
            found = sum(keep_face(d, settings.face_min_confidence, settings.face_min_size) for d in details)
            out.faces += faces_by_frame[(video, index)]
            if faces_by_frame[(video, index)] > found:
                out.duplicated.append(f"{key} frame {index}: {faces_by_frame[(video, index)]} faces rows, "
                                      f"{found} faces")
        visits = tracks_by_video[video]
        if any(r["person_count"] for r in rows.values()) and not visits:
            out.lost.append(f"{key}: people seen but no tracks row")
        video_faces = sum(n for (v, _), n in faces_by_frame.items() if v == video)
        if sum(t["faces"] for t in visits) != video_faces:
            out.lost.append(f"{key}: tracks count {sum(t['faces'] for t in visits)} faces, {video_faces} faces rows")
    return out


def load_run(stack: LocalStack, templates: list[Path], prefix: str, count: int, concurrency: int,
             capsys: pytest.CaptureFixture[str]) -> None:
    keys = drop(stack, templates, prefix, count)
    d = RecordingDispatcher(stack, concurrency=concurrency)
    started = time.monotonic()
    assert d.run_until_idle(timeout_s=1800)
    seconds = time.monotonic() - started
    dlq = {stage: drain_dlq(stack, stage) for stage in contract.STAGES}
    result = check(stack, keys)

    # Replay: every body every queue received, sent again; nothing may change.
    wanted = set(keys)
    before = {t: table_ids(stack, t, wanted) for t in contract.TABLES}
    objects_before = analytics_objects(stack)
    replayed = {stage: len(bodies) for stage, bodies in d.bodies.items()}
    for stage, bodies in d.bodies.items():
        aws.send_messages(stack.queue_urls[stage], [json.loads(b) for b in bodies])
    replay = Dispatcher(stack, concurrency=concurrency)
    assert replay.run_until_idle(timeout_s=1800)
    after = {t: table_ids(stack, t, wanted) for t in contract.TABLES}
    replay_dlq = {stage: drain_dlq(stack, stage) for stage in contract.STAGES}

    report(capsys, prefix, count, concurrency, seconds, result, d.stats, dlq, replayed,
           {t: (sum(before[t].values()), sum(after[t].values())) for t in before})
    assert result.lost == [] and result.duplicated == []
    assert result.frames > 0 and result.faces > 0
    assert {s: v for s, v in dlq.items() if v} == {}
    assert after == before and analytics_objects(stack) == objects_before
    assert {s: v for s, v in replay_dlq.items() if v} == {}
    assert sum(replay.stats[s].succeeded for s in contract.STAGES) == sum(replayed.values())


def analytics_objects(stack: LocalStack) -> int:
    s3, bucket, n = aws.client("s3"), stack.names.bucket("analytics"), 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        n += sum(1 for o in page.get("Contents", []) if not o["Key"].startswith("errors/"))
    return n


def report(capsys: pytest.CaptureFixture[str], prefix: str, count: int, concurrency: int, seconds: float,
           result: Check, stats: dict[str, StageStats], dlq: dict[str, list[str]],
           replayed: dict[str, int], rows_around_replay: dict[str, tuple[int, int]]) -> None:
    lines = [
        f"load run {prefix}: {count} videos, concurrency {concurrency} (per stage: "
        + ", ".join(f"{s} {contract.stage(s)['max_concurrency']}" for s in contract.STAGES) + ")",
        f"  {seconds:.1f} s: {count / seconds * 60:.1f} videos/min, {result.frames / seconds:.2f} frames/s",
        f"  frames {result.frames}, with people {result.frames_with_people}, faces {result.faces}; "
        f"lost {len(result.lost)}, duplicated {len(result.duplicated)}, "
        f"DLQ {sum(len(v) for v in dlq.values())}",
        "  invocations " + ", ".join(f"{s} {st.invocations} ({st.failed} failed)" for s, st in stats.items()),
        "  replayed " + ", ".join(f"{s} {n}" for s, n in replayed.items()) + " messages; rows before -> after: "
        + ", ".join(f"{t} {a} -> {b}" for t, (a, b) in rows_around_replay.items()),
    ]
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_local_models_answer_the_same_under_concurrent_requests(stack: LocalStack) -> None:
    """The endpoint (one OpenCV DNN net) and the local Rekognition (yuface, one Node sidecar
    speaking a request/answer protocol over a pipe) are called from many invocations at once:
    each answer must be the one a lone request gets."""
    photos = ["astronaut", "grace_hopper", "camera", "coffee"]
    bucket = stack.names.bucket("analytics")  # a bucket without notifications: no pipeline work
    for p in photos:
        aws.client("s3").put_object(Bucket=bucket, Key=f"concurrency/{p}.jpg", Body=jpeg(p))
    endpoint = Settings.from_env().endpoint_name

    def ask(p: str) -> tuple[Any, Any]:
        uri = f"s3://{bucket}/concurrency/{p}.jpg"
        answer, _ = aws.invoke_endpoint(endpoint, {"instances": [{"s3_uri": uri}], "min_confidence": 0.3})
        faces = aws.detect_faces(bucket, f"concurrency/{p}.jpg")["FaceDetails"]
        return answer["predictions"], [(f["BoundingBox"], f.get("AgeRange"), f.get("Pose")) for f in faces]

    try:
        alone = {p: ask(p) for p in photos}
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(ask, photos * 6))
    finally:
        for p in photos:
            aws.client("s3").delete_object(Bucket=bucket, Key=f"concurrency/{p}.jpg")
    assert sum(len(faces) for _, faces in alone.values()) >= 3 and any(pred[0]["boxes"] for pred, _ in alone.values())
    assert together == [alone[p] for p in photos * 6]


def test_load_small(stack: LocalStack, templates: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    load_run(stack, templates, "small", count=8, concurrency=4, capsys=capsys)


@pytest.mark.slow
def test_load_soak(stack: LocalStack, templates: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("VIDSIFT_LOAD_VIDEOS", "60"))
    concurrency = int(os.environ.get("VIDSIFT_LOAD_CONCURRENCY", "8"))
    load_run(stack, templates, "soak", count=count, concurrency=concurrency, capsys=capsys)
