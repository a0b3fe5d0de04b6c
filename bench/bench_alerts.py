"""Known faces and alerts: how similar the local face descriptors say faces are, and how long
an alert takes on the local stack.

Why: the local Rekognition's SearchFacesByImage calls two faces the same person when the
cosine of their faceres descriptors reaches ``MATCH_COSINE`` (reported as Similarity 90);
that number must come from measurements, and this prints them. And alerts are only useful
if they are fast: this times a frame from its arrival in the frames bucket to the message
on the queue subscribed to the alert topic, through the real handlers.

* similarity: descriptors of altered copies of the bundled photos (same person), 18
  thumbnails of one man from different photos (the face-match screenshot shipped in
  @vladmandic/human's npm package), and different people (the three photos, 97 lfw_subset
  faces); prints the cosine distributions and the error rates around the threshold.
* latency: the local stack, a person rule and a face_match rule; each frame is put into the
  frames bucket (person alert: detect_people), and the dispatcher polls as Lambda's event
  source mapping would. A video frame's face alert comes once its visit is tracked (faces are
  analysed once per visit), so face alerts are timed on the fast lane below only.
* snapshot latency (the alert fast lane): an edge snapshot is PUT into the raw bucket under
  the contract's snapshot_prefix with the edge's metadata; timed from the PUT to the SNS
  Publish of the person alert (detect_people) and of the face alert (detect_people's copy,
  then analyze_faces). The dispatcher polls without SQS's batching windows: in the cloud each
  of the two stages adds up to its contract batching_window_s (1 s) to these figures.

    python -m bench.bench_alerts [--repeat 10] [--parts similarity latency]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HUMAN_ASSETS = Path(__file__).resolve().parents[1] / "vidsift/local/human/node_modules/@vladmandic/human/assets"
PEOPLE = ("astronaut", "grace_hopper", "camera")


def _bgr(name: str) -> np.ndarray:
    from vidsift.testing.samples import photo

    return cv2.cvtColor(photo(name), cv2.COLOR_RGB2BGR)


def lfw_images(count: int = 100) -> list[np.ndarray]:
    """``count`` different people: scikit-image's LFW crops, grey, enlarged and padded so the
    face detector finds them (BGR): the strangers the face benches match against."""
    from skimage import data

    out = []
    for tile in data.lfw_subset()[:count]:
        g = cv2.resize((tile * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        out.append(cv2.cvtColor(cv2.copyMakeBorder(g, 50, 50, 50, 50, cv2.BORDER_CONSTANT, value=128),
                                cv2.COLOR_GRAY2BGR))
    return out


def lfw_descriptors(analyzer: Any, count: int = 100) -> list[np.ndarray]:
    """The face descriptor of each of :func:`lfw_images` the analyzer finds a face in."""
    found = (analyzer.analyze_with_descriptors(g) for g in lfw_images(count))
    return [f[0][1] for f in found if f and f[0][1] is not None]


def variants(name: str) -> dict[str, np.ndarray]:
    """Altered copies: what the same face may look like to a camera."""
    img = _bgr(name)
    h, w = img.shape[:2]
    rng = np.random.default_rng(0)
    out = {"original": img, "mirrored": img[:, ::-1].copy(),
           "half size": cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
           "noisy": np.clip(img.astype(np.int16) + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8),
           "darker": (img * 0.6).astype(np.uint8),
           "brighter": np.clip(img.astype(np.int16) * 1.3 + 20, 0, 255).astype(np.uint8),
           "rotated 10 deg": cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 10, 1.0), (w, h)),
           "blurred": cv2.GaussianBlur(img, (5, 5), 1.5),
           "grey": cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)}
    _ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 30])
    out["jpeg q30"] = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    frame = np.full((720, 1280, 3), 40, np.uint8)
    scale = min(600 / h, 1.0)
    small = cv2.resize(img, (int(w * scale), int(h * scale)))
    frame[60:60 + small.shape[0], 300:300 + small.shape[1]] = small
    out["in a 1280x720 frame"] = frame
    return out


def _crop(img: np.ndarray, box: dict[str, float]) -> np.ndarray:
    """What analyze_faces sends: the face with context (vidsift.core.matching.face_crops)."""
    from vidsift.core import matching

    _ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (crop,) = matching.face_crops(enc.tobytes(), [box])
    return cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)


def _stats(xs: list[float]) -> str:
    a = np.asarray(xs)
    return (f"n={len(a):5d}  min {a.min():.3f}  p5 {np.percentile(a, 5):.3f}  median {np.median(a):.3f}  "
            f"p95 {np.percentile(a, 95):.3f}  max {a.max():.3f}")


def similarity_figures() -> None:
    from vidsift.local import face_analyzer as fa
    from vidsift.local import rekognition

    analyzer = fa.FaceAnalyzer(attributes=True)
    if not analyzer.has_attributes:
        print(f"face descriptor model unavailable: {analyzer.attributes_error}")
        return
    try:
        same: dict[str, list[np.ndarray]] = {}
        missed = []
        for name in PEOPLE:
            for label, img in variants(name).items():
                found = analyzer.analyze_with_descriptors(img)
                if not found or found[0][1] is None:
                    missed.append(f"{name}/{label}")
                    continue
                same.setdefault(name, []).append(found[0][1])
                crop = analyzer.analyze_with_descriptors(_crop(img, found[0][0]["BoundingBox"]))
                if crop and crop[0][1] is not None:
                    same[name].append(crop[0][1])
                else:
                    missed.append(f"{name}/{label}/crop")
        lfw = lfw_descriptors(analyzer)
        man: list[np.ndarray] = []
        shot = cv2.imread(str(HUMAN_ASSETS / "screenshot-facematch.jpg"))
        if shot is not None:  # the first row of thumbnails: one man, 18 different photos
            man = [d for _, d in analyzer.analyze_with_descriptors(shot[283:395]) if d is not None]
    finally:
        analyzer.close()

    pos = [float(a @ b) for v in same.values() for a, b in itertools.combinations(v, 2)]
    neg = [float(a @ b) for x, y in itertools.combinations(same, 2) for a in same[x] for b in same[y]]
    neg += [float(a @ b) for v in same.values() for a in v for b in lfw]
    cross = [float(a @ b) for a, b in itertools.combinations(man, 2)]
    man_neg = [float(a @ b) for a in man for b in [*lfw, *(d for v in same.values() for d in v)]]
    print(f"faces without a descriptor: {missed or 'none'}; lfw faces with one: {len(lfw)} of 100; "
          f"thumbnails of the man: {len(man)}")
    print("cosine of faceres descriptors:")
    print(f"  same person, altered copies and crops   {_stats(pos)}")
    best = np.zeros(0)
    if cross:
        g = np.stack(man) @ np.stack(man).T
        np.fill_diagonal(g, -1)
        best = g.max(1)
        print(f"  same man, different photos (pairs)      {_stats(cross)}")
        print(f"  same man, best of his other photos      {_stats(best.tolist())}")
    print(f"  different people                        {_stats(neg + man_neg)}")
    tau = rekognition.MATCH_COSINE
    print(f"threshold: cosine {tau} is reported as Similarity {rekognition.similarity(tau):.0f}")
    for t in (0.55, 0.60, tau, 0.70):
        line = (f"  cosine >= {t:.2f} (Similarity {rekognition.similarity(t):5.1f}): "
                f"altered copies missed {np.mean(np.asarray(pos) < t) * 100:5.2f}%, ")
        if cross:
            line += (f"other photos missed {np.mean(np.asarray(cross) < t) * 100:5.1f}% one-to-one, "
                     f"{np.mean(best < t) * 100:5.1f}% best of his others, ")
        line += f"different people matched {np.mean(np.asarray(neg + man_neg) >= t) * 100:.3f}%"
        print(line)


def _jpeg(name: str) -> bytes:
    _ok, enc = cv2.imencode(".jpg", _bgr(name), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return enc.tobytes()


def _ms(xs: list[float]) -> str:
    """median / p90 / max in milliseconds (p90 by linear interpolation between ranks)."""
    p90 = statistics.quantiles(xs, n=10, method="inclusive")[8] if len(xs) > 1 else xs[0]
    return f"median {statistics.median(xs) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"


def snapshot_figures(stack: Any, dispatcher: Any, repeat: int) -> None:
    """The alert fast lane: edge snapshot PUT -> person alert and face alert published.

    ``aws.publish`` is wrapped to note when each alert's Publish returned (the handlers run in
    this process, so that is the moment SNS accepted it); the subscriber queue is drained so
    it does not fill up.
    """
    from datetime import UTC, datetime

    from vidsift import aws
    from vidsift.testing.localcheck import put_snapshot

    published: list[tuple[str, float]] = []
    real_publish = aws.publish

    def timed_publish(topic_arn: str, **kw: Any) -> str:
        message_id = real_publish(topic_arn, **kw)
        published.append((kw["attributes"]["kind"], time.perf_counter()))
        return message_id

    aws.publish = timed_publish  # type: ignore[assignment]
    sqs = aws.client("sqs")

    def wait(stage: str, kind: str, started: float, timeout_s: float = 120) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for k, t in published:
                if k == kind:
                    return t - started
            if not dispatcher.poll(stage):
                time.sleep(0.005)
        raise TimeoutError(f"no {kind} alert within {timeout_s} s")

    body = _jpeg("astronaut")
    person: list[float] = []
    face: list[float] = []
    try:
        for i in range(repeat + 1):  # the first round warms the models and clients up: not counted
            published.clear()
            started = time.perf_counter()
            put_snapshot(stack, body, camera_id="bench-snapshot", recorded_at=datetime.now(UTC),
                         clip_key=f"uploads/bench-clip-{i}.mp4")
            p = wait("detect_people", "person", started)
            f = wait("analyze_faces", "face_match", started)
            while got := sqs.receive_message(QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=0).get("Messages", []):
                for m in got:
                    sqs.delete_message(QueueUrl=stack.alert_queue_url, ReceiptHandle=m["ReceiptHandle"])
            if i:
                person.append(p)
                face.append(f)
    finally:
        aws.publish = real_publish  # type: ignore[assignment]
    print(f"{repeat} edge snapshots (astronaut photo, 512x512 JPEG, edge metadata), the alert fast lane:")
    print(f"  snapshot PUT (raw bucket) -> detect_people -> person alert published: {_ms(person)}")
    print(f"  snapshot PUT -> detect_people -> copy -> analyze_faces (DetectFaces, crop, SearchFacesByImage) "
          f"-> face alert published: {_ms(face)}")
    print("  (local polling has no SQS batching window; in the cloud add up to 1 s per stage, 2 s for the face alert)")


def latency_figures(repeat: int) -> None:
    from vidsift import aws
    from vidsift.core import keys, matching
    from vidsift.core.records import FrameMeta
    from vidsift.local.dispatcher import Dispatcher
    from vidsift.local.stack import LocalStack

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with LocalStack() as stack:
        d = Dispatcher(stack)
        d.run_until_idle(timeout_s=60)
        aws.index_faces(matching.collection_name(stack.names), _jpeg("astronaut"),
                        matching.encode_name("Eileen Collins"))
        os.environ["ALERT_RULES"] = json.dumps([
            {"name": "person", "when": "person", "cooldown_s": 0},
            {"name": "known", "when": "face_match", "cooldown_s": 0}])
        sqs = aws.client("sqs")

        def wait_alert(stage: str, kind: str, started: float, timeout_s: float = 120) -> float:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                d.poll(stage)
                for m in sqs.receive_message(QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=0).get("Messages", []):
                    sqs.delete_message(QueueUrl=stack.alert_queue_url, ReceiptHandle=m["ReceiptHandle"])
                    if json.loads(json.loads(m["Body"])["Message"])["kind"] == kind:
                        return time.perf_counter() - started
            raise TimeoutError(f"no {kind} alert within {timeout_s} s")

        body = _jpeg("astronaut")
        person: list[float] = []
        for i in range(repeat + 1):  # the first round warms the models and clients up: not counted
            meta = FrameMeta(video_id=f"bench{i}", source_bucket="raw", source_key="uploads/bench.mp4",
                             camera_id="bench", frame_index=i, frame_time_s=float(i), captured_at=None)
            key = keys.frame_key(meta.video_id, i)
            started = time.perf_counter()
            aws.client("s3").put_object(Bucket=stack.names.bucket("frames"), Key=key, Body=body,
                                        Metadata=meta.to_s3())
            seconds = wait_alert("detect_people", "person", started)
            if i:
                person.append(seconds)
        print(f"{repeat} frames, one person each (astronaut photo, 512x512), local stack on this machine:")
        print(f"  frames bucket -> detect_people -> SNS -> subscriber queue: median "
              f"{statistics.median(person) * 1000:.0f} ms, min {min(person) * 1000:.0f} ms, "
              f"max {max(person) * 1000:.0f} ms")
        # A video frame's face alert now waits for its visit to be tracked (faces are analysed
        # once per visit, after the video's detection): no per-frame latency to time. The
        # alert fast lane below (an edge snapshot) is where a face alert is immediate.
        snapshot_figures(stack, d, repeat)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_alerts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--parts", nargs="+", choices=["similarity", "latency"], default=["similarity", "latency"])
    args = parser.parse_args(sys.argv[1:] if argv is None and __name__ == "__main__" else (argv or []))
    os.environ.setdefault("HOME", tempfile.mkdtemp(prefix="vidsift-bench-home-"))
    if "similarity" in args.parts:
        similarity_figures()
    if "latency" in args.parts:
        # The rules it sets must not outlive it: `make bench` runs the other benches in this
        # process (and their `vidsift run` commands inherit the environment).
        saved = os.environ.get("ALERT_RULES")
        try:
            latency_figures(args.repeat)
        finally:
            if saved is None:
                os.environ.pop("ALERT_RULES", None)
            else:
                os.environ["ALERT_RULES"] = saved


if __name__ == "__main__":
    main()
