"""What a run would cost on AWS, from what the run measured and the list prices in prices.json.

The point is a number a person can argue with, so every quantity is either measured
(stage handler times, invocations, rows, frames, bytes read) or counted from what the
handlers do per frame, and every assumption is written next to it (``ASSUMPTIONS``).

Per video: stage totals in run.json are shared out in proportion to what each video made
the stage do (split_frames by the video's own split time, detect_people and track_people by
its frames kept, analyze_faces by its DetectFaces calls), so the videos add up to the run.

DetectFaces, the largest line for a video with people: since the person tracker
(track_people), analyze_faces calls it only on the frames chosen per track (a person's
best frame, a closer one, one per long stay), so the count is what the run recorded
(run.json videos[].detect_faces_calls) or, without it, the sum of the tracks' face_frames
(an upper bound: a frame chosen by two tracks of one group is called once). A results
folder from before the tracker (no tracks, no track_people stage) is costed as that
pipeline ran: one call per frame with people. The per-request lines (S3, SQS, DynamoDB)
follow the same split: see ``ASSUMPTIONS``, which the report prints.

``estimate_run(out)`` is the run's total as plain numbers, for run.json's "cost".
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from vidsift import contract
from vidsift.report.data import RunData, load

PRICES_PATH = Path(__file__).with_name("prices.json")

#: The serverless endpoint's memory: sagemaker/deploy.py's ``--memory-mb`` default.
SAGEMAKER_MEMORY_MB = 4096
#: Firehose bills each record rounded up to the next 5 KB.
FIREHOSE_RECORD_INCREMENT = 5 * 1024
GB = 1 << 30
#: Powertools idempotency writes twice per handled object: the in-progress record, then the result.
IDEMPOTENCY_WRITES_PER_CALL = 2
#: SendMessageBatch takes at most 10 messages (vidsift.aws.send_messages), billed as one request.
SQS_BATCH = 10
#: DynamoDB on-demand bills a write per 1 KB of item (rounded up).
DYNAMODB_WRITE_UNIT = 1024
#: What a frame adds to its video's progress item: its index in a number set (up to 6 digits
#: and DynamoDB's per-number overhead), about 8 bytes.
PROGRESS_BYTES_PER_FRAME = 8


def _range_block_size() -> int:
    """split_frames reads a video in ranged GETs of this many bytes (aws.S3RangeReader)."""
    from vidsift.aws import S3RangeReader

    return int(inspect.signature(S3RangeReader.__init__).parameters["block_size"].default)


ASSUMPTIONS = (
    "Lambda is billed for the handler wall time measured locally (run.json stages.*.seconds) at the memory "
    "configured in vidsift/contract.json; local hardware is not Lambda's, so times scale with it.",
    "SageMaker Serverless Inference seconds = frames sent to the endpoint × the per-frame inference time. "
    "Unless run.json records the endpoint's own time (endpoint.seconds / endpoint.frames), the per-frame time is "
    "detect_people's handler time per frame kept, an upper bound (it also holds the S3 and Firehose calls); it is "
    f"billed at the endpoint's memory size ({SAGEMAKER_MEMORY_MB} MB, sagemaker/deploy.py's default). "
    "The local detector (SSDLite on CPU) is not the cloud's YOLO: measure on the real endpoint before relying on it.",
    "Lambda track_people's time is shared between videos by frames kept (it reads every frame's detections and "
    "writes the people rows), analyze_faces' by DetectFaces calls.",
    "Rekognition DetectFaces: with the person tracker, once per frame chosen for a track (run.json's "
    "detect_faces_calls, else the sum of the tracks' face_frames, an upper bound since tracks analysed together "
    "share frames); frames of a person already seen are not sent again. Results from before the tracker: once "
    "per frame with people. Alert snapshots (the fast lane) are not counted: vidsift run uploads none.",
    "Firehose: one record per row (people: one per frame sent to detection; faces: one per face; tracks: one per "
    "visit), each rounded up to 5 KB; record bytes are the rows as JSON lines.",
    "Frames: 'sampled' are the frames the sampling rule chose; duplicates are skipped before upload, so the "
    "frames kept (sampled minus duplicates skipped) are what is stored, sent to the endpoint and written as "
    "people rows.",
    "S3 PUT/COPY: the video upload (one PUT; a multipart upload adds one per part), one PUT per frame kept, one "
    "summary, one COPY per frame with people, one error object per error; a video cut into S segments adds per "
    "segment one segment document and one LIST. S3 GET/HEAD: one HEAD and ceil(bytes read / range block) ranged "
    "GETs of the video, per frame kept one GET by the endpoint (which returns the frame's metadata with its "
    "boxes; before the tracker detect_people also made one HEAD per frame, and per frame with people one HEAD "
    "and one GET by Rekognition); S segments add S HEADs and S(S+1)/2 segment-document GETs. Firehose's own "
    "delivery PUTs (a few per buffer interval, shared by all videos) are not counted.",
    "With the tracker, per video S segments (S ≥ 1) and G face groups (run.json's face_groups, else one per "
    "track with frames to analyse, an upper bound): S3 adds S tracking documents and G face-work documents (a PUT "
    "and a GET each) and one GET by Rekognition per DetectFaces call (no HEAD: the metadata travels in the work "
    "document); the people bucket no longer notifies analyze_faces of each frame copied.",
    "SQS: one send per S3 event (video, frame kept; before the tracker also frame with people) and per segment "
    "message; with the tracker one SendMessageBatch (10 messages) per 10 segment messages, one for the video's "
    "message and one per 10 face groups; one receive and one delete per Lambda invocation. The event source "
    "mapping's empty polls are a fixed cost per queue and are not counted.",
    "DynamoDB: two idempotency writes per video, per segment and per frame or message handled by each stage "
    "(with the tracker: per segment message, video message and face group instead of per frame with people; "
    "detect_people keeps none per frame: its writes are keyed by the frame). The tracker's progress table: per "
    "frame kept one item of its detections (1 KB write units, sized as its people row; written a batch at a "
    "time), one UpdateItem per batch of frames (detect_people's batch size), billed on the progress item's size "
    "(about 8 bytes a frame, half the video's on average); S updates by split_frames, 2 per segment and 1 per "
    "video by track_people.",
    "Not counted: storage (S3, DynamoDB), CloudWatch Logs, KMS, data transfer, Athena queries, SageMaker data "
    "processing (requests carry S3 URIs, not images), DynamoDB reads of the progress table (a few 4 KB read "
    "units per segment), the progress table's frame items growing by the low boxes they keep for the tracker "
    "(PERSON_TRACK_CONFIDENCE; about 0.5 KB a box: at most a write unit or two a frame that has some), "
    "Rekognition SearchFacesByImage against a known-faces collection, free tiers and volume "
    "discounts.",
    "DetectFaces on every frame: every sampled frame before duplicate skipping sent to DetectFaces, no person "
    "filter. Rekognition Video: stored-video face detection for the same video minutes, pro rata.",
)


# --------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Price:
    """One AWS price as its pricing page states it, with where and when it was read: an estimate
    is only as good as the prices it can show its sources for."""

    key: str
    #: Dollars per single unit (per request, per GB-second...).
    usd: float
    unit: str
    what: str
    source: str
    as_of: str
    #: How the pricing page states it: ``listed`` dollars per ``per`` units ($0.20 per 1M requests).
    listed: float = 0.0
    per: int = 1

    def label(self) -> str:
        """The price as the pricing page words it, so it is easy to check against it."""
        listed = f"{self.listed or self.usd:.10f}".rstrip("0")
        whole, _, frac = listed.partition(".")
        listed = f"${whole}.{frac.ljust(2, '0')}"
        if self.per == 1:
            return f"{listed} per {self.unit}"
        count = f"{self.per // 1_000_000}M" if self.per % 1_000_000 == 0 else f"{self.per:,}"
        return f"{listed} per {count} {self.unit}s"


@dataclass(frozen=True)
class Prices:
    """The price list of one region (vidsift/report/prices.json), with SageMaker serverless priced
    by memory size as AWS bills it."""

    region: str
    currency: str
    items: dict[str, Price]
    #: SageMaker serverless price per second, by memory size in MB.
    sagemaker_by_memory: dict[int, float]

    def __getitem__(self, key: str) -> Price:
        return self.items[key]

    def sagemaker(self, memory_mb: int) -> Price:
        """The serverless endpoint's price per second at ``memory_mb``: SageMaker bills by memory size."""
        base = self.items["sagemaker_serverless_second"]
        if memory_mb not in self.sagemaker_by_memory:
            raise ValueError(f"no SageMaker serverless price for {memory_mb} MB "
                             f"(prices.json has {sorted(self.sagemaker_by_memory)})")
        price = self.sagemaker_by_memory[memory_mb]
        return Price(base.key, price, base.unit, f"{base.what}, {memory_mb} MB", base.source, base.as_of, price)

    @property
    def as_of(self) -> str:
        """The oldest date among the prices: how stale the estimate may be."""
        return min(p.as_of for p in self.items.values())


def load_prices(path: Path | None = None) -> Prices:
    """The price list from prices.json (or ``path``), so a price change is a data edit, not code."""
    doc = json.loads((path or PRICES_PATH).read_text())
    items: dict[str, Price] = {}
    by_memory: dict[int, float] = {}
    for key, p in doc["prices"].items():
        if "usd_by_memory_mb" in p:
            by_memory = {int(k): float(v) for k, v in p["usd_by_memory_mb"].items()}
            usd = by_memory.get(SAGEMAKER_MEMORY_MB, 0.0)
        else:
            usd = float(p["usd"]) / int(p.get("per", 1))
        items[key] = Price(key, usd, p["unit"], p["what"], p["source"], p["as_of"],
                           listed=float(p.get("usd", usd)), per=int(p.get("per", 1)))
    return Prices(region=doc["region"], currency=doc["currency"], items=items, sagemaker_by_memory=by_memory)


@cache
def default_prices() -> Prices:
    """The bundled price list (vidsift/report/prices.json)."""
    return load_prices()


# --------------------------------------------------------------------------- usage


@dataclass
class Usage:
    """Billable quantities for one video, or summed for a run."""

    lambda_gb_s: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in contract.STAGES})
    lambda_ephemeral_gb_s: float = 0.0
    lambda_requests: float = 0.0
    sagemaker_seconds: float = 0.0
    detect_faces_images: int = 0
    firehose_records: int = 0
    firehose_bytes: int = 0
    firehose_billed_bytes: int = 0
    s3_put: float = 0.0
    s3_get: float = 0.0
    sqs_requests: float = 0.0
    dynamodb_writes: float = 0.0
    video_minutes: float = 0.0
    #: Frames the sampling rule chose (before duplicate skipping) and frames kept after it.
    frames_sampled: int = 0
    frames_kept: int = 0
    frames_with_people: int = 0
    #: Person visits (tracks) and videos that went through the tracker.
    tracks: int = 0
    tracked_videos: int = 0
    #: False when run.json (stage times) was missing: Lambda and SageMaker are then unknown.
    timed: bool = True

    def __add__(self, other: Usage) -> Usage:
        out = Usage(timed=self.timed and other.timed)
        for f in fields(self):
            if f.name == "timed":
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            setattr(out, f.name, {k: a.get(k, 0.0) + b.get(k, 0.0) for k in {*a, *b}} if isinstance(a, dict)
                    else a + b)
        return out


def _record_bytes(row: dict[str, Any]) -> int:
    """The size of a row as the handlers send it to Firehose (one compact JSON line)."""
    return len((json.dumps(row, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode())


def _shares(weights: Sequence[float]) -> list[float]:
    total = sum(weights)
    if total > 0:
        return [w / total for w in weights]
    return [1 / len(weights)] * len(weights) if weights else []


def per_frame_inference_s(data: RunData) -> float | None:
    """Seconds of endpoint time per frame: the endpoint's own measurement when run.json has
    one, else detect_people's handler time per frame kept (an upper bound: all of the
    stage's time is taken as inference time)."""
    if not data.run:
        return None
    endpoint = data.run.get("endpoint") or {}
    if endpoint.get("frames"):
        return float(endpoint["seconds"]) / float(endpoint["frames"])
    stage = (data.stages or {}).get("detect_people") or {}
    frames = sum(v.frames_kept for v in data.videos)
    if frames:
        return float(stage.get("seconds") or 0.0) / frames
    return None


def usages(data: RunData) -> list[Usage]:
    """Per-video usage, in the order of ``data.videos``."""
    videos = data.videos
    stages = data.stages
    block = _range_block_size()
    weights = {
        "split_frames": _shares([float(v.summary.get("seconds") or 0.0) for v in videos]),
        "detect_people": _shares([float(v.frames_kept) for v in videos]),
        "track_people": _shares([float(v.frames_kept) for v in videos]),
        "analyze_faces": _shares([float(v.detect_faces_calls) for v in videos]),
    }
    even = _shares([1.0] * len(videos))
    per_frame = per_frame_inference_s(data)
    result: list[Usage] = []
    for i, v in enumerate(videos):
        u = Usage(timed=stages is not None)
        invocations = 0.0
        for stage in contract.STAGES:
            st = (stages or {}).get(stage)
            if not st:
                continue
            share = weights.get(stage, even)[i]
            memory = float(st.get("memory_mb") or contract.stage(stage)["memory_mb"])
            seconds = float(st.get("seconds") or 0.0) * share
            u.lambda_gb_s[stage] = seconds * memory / 1024
            extra_storage = max(0, int(contract.stage(stage).get("ephemeral_storage_mb", 512)) - 512)
            u.lambda_ephemeral_gb_s += seconds * extra_storage / 1024
            invocations += float(st.get("invocations") or 0) * share
        u.lambda_requests = invocations
        frames, people, calls = v.frames_kept, v.frames_with_people, v.detect_faces_calls
        segs = v.segments if v.segments > 1 else 0
        u.sagemaker_seconds = frames * per_frame if per_frame is not None else 0.0
        u.detect_faces_images = calls
        rows = [*v.people, *v.faces, *v.tracks]
        u.firehose_records = len(rows)
        sizes = [_record_bytes(r) for r in rows]
        u.firehose_bytes = sum(sizes)
        u.firehose_billed_bytes = sum(math.ceil(s / FIREHOSE_RECORD_INCREMENT) * FIREHOSE_RECORD_INCREMENT
                                      for s in sizes)
        n_errors = len(v.errors)
        bytes_read = int(v.summary.get("bytes_read") or 0)
        u.s3_put = 1 + frames + (1 if v.summary else 0) + people + n_errors + 2 * segs
        u.s3_get = 1 + math.ceil(bytes_read / block) + frames + segs + segs * (segs + 1) // 2
        if v.tracked:
            n_seg, groups = v.segments, v.face_groups
            u.s3_put += n_seg + groups
            u.s3_get += n_seg + groups + calls
            u.sqs_requests = (1 + frames + segs + math.ceil(n_seg / SQS_BATCH) + 1 + math.ceil(groups / SQS_BATCH)
                              + 2 * invocations)
            # detect_people: each frame's boxes (BatchWriteItem bills per item), then one ADD per batch
            # to the progress item, billed on its size (its frame set half full on average).
            updates = math.ceil(frames / int(contract.stage("detect_people")["batch_size"]))
            item_units = max(1, math.ceil(PROGRESS_BYTES_PER_FRAME * frames / 2 / DYNAMODB_WRITE_UNIT))
            progress = sum(math.ceil(_record_bytes(r) / DYNAMODB_WRITE_UNIT) for r in v.people)
            progress += updates * item_units + n_seg + 2 * n_seg + 1
            u.dynamodb_writes = IDEMPOTENCY_WRITES_PER_CALL * (1 + segs + n_seg + 1 + groups) + progress
            u.tracks = v.unique_people or 0
            u.tracked_videos = 1
        else:  # before the tracker detect_people also read each frame's metadata (HeadObject)
            u.s3_get += frames + 2 * people
            u.sqs_requests = 1 + frames + people + segs + 2 * invocations
            u.dynamodb_writes = IDEMPOTENCY_WRITES_PER_CALL * (1 + segs + frames + people)
        u.video_minutes = (v.duration_s or 0.0) / 60
        u.frames_sampled, u.frames_kept, u.frames_with_people = v.frames_sampled, frames, people
        result.append(u)
    return result


# --------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class Line:
    """One component of an estimate (quantity times price); ``usd`` is None when the quantity was
    not measured, so a missing number is shown as missing rather than as zero."""

    component: str
    quantity: float
    unit: str
    price: Price
    #: None when the quantity was not measured (no run.json).
    usd: float | None


@dataclass(frozen=True)
class Estimate:
    """A run's estimated AWS cost, line by line with the usage and prices it came from, so the
    report can show how the total was reached."""

    lines: tuple[Line, ...]
    usage: Usage
    prices: Prices

    @property
    def total(self) -> float:
        """Dollars of the lines that were measured (a missing quantity counts as nothing, see ``complete``)."""
        return sum(line.usd or 0.0 for line in self.lines)

    @property
    def complete(self) -> bool:
        """Whether every line was measured: without run.json Lambda and SageMaker time are unknown."""
        return all(line.usd is not None for line in self.lines)

    @property
    def video_minutes(self) -> float:
        """Minutes of video the estimate covers, the denominator of every per-minute figure."""
        return self.usage.video_minutes

    @property
    def per_minute(self) -> float | None:
        """Dollars per minute of video, the figure that compares with the alternatives; None without video."""
        return self.total / self.video_minutes if self.video_minutes > 0 else None

    @property
    def every_frame_detect_faces(self) -> float:
        """DetectFaces on every sampled frame, before duplicate skipping, no person filter."""
        return self.usage.frames_sampled * self.prices["rekognition_detect_faces_image"].usd

    @property
    def rekognition_video(self) -> float:
        """What Rekognition Video's stored-video face detection would cost for the same minutes: the
        alternative the pipeline is measured against."""
        return self.video_minutes * self.prices["rekognition_video_face_minute"].usd

    @property
    def detect_faces_avoided(self) -> int:
        """Sampled frames not sent to DetectFaces (no person, or a person already seen): the saving."""
        return self.usage.frames_sampled - self.usage.detect_faces_images

    @property
    def avoided_by_dedup(self) -> int:
        """DetectFaces calls saved because near-duplicate frames were skipped before detection."""
        return self.usage.frames_sampled - self.usage.frames_kept

    @property
    def avoided_by_person_filter(self) -> int:
        """DetectFaces calls saved because the detector found nobody in the frame."""
        return self.usage.frames_kept - self.usage.frames_with_people

    @property
    def avoided_by_tracking(self) -> int:
        """DetectFaces calls saved because the tracker sent only each person's chosen frames,
        not every frame they were in (0 before the tracker)."""
        return self.usage.frames_with_people - self.usage.detect_faces_images

    @property
    def avoided_ratio(self) -> float | None:
        """Share of the DetectFaces calls a no-filter, no-dedup pipeline would make that this
        run did not make (measured: frames before dedup vs calls made)."""
        before = self.usage.frames_sampled
        return self.detect_faces_avoided / before if before else None


def estimate(usage: Usage, prices: Prices | None = None) -> Estimate:
    """The cost of ``usage`` at ``prices``, line by line, with unmeasured lines marked as such."""
    p = prices or default_prices()
    timed = usage.timed

    def line(component: str, quantity: float, unit: str, price: Price, measured: bool = True) -> Line:
        return Line(component, quantity, unit, price, quantity * price.usd if measured else None)

    lines = [line(f"Lambda {stage}", usage.lambda_gb_s.get(stage, 0.0), "GB-s", p["lambda_gb_second"], timed)
             for stage in contract.STAGES]
    lines += [
        line("Lambda ephemeral storage", usage.lambda_ephemeral_gb_s, "GB-s", p["lambda_ephemeral_gb_second"], timed),
        line("Lambda requests", usage.lambda_requests, "requests", p["lambda_request"], timed),
        line("SageMaker serverless inference", usage.sagemaker_seconds, "s", p.sagemaker(SAGEMAKER_MEMORY_MB), timed),
        line("Rekognition DetectFaces", usage.detect_faces_images, "images", p["rekognition_detect_faces_image"]),
        line("Firehose ingestion", usage.firehose_billed_bytes / GB, "GB", p["firehose_gb"]),
        line("S3 PUT/COPY", usage.s3_put, "requests", p["s3_put_request"]),
        line("S3 GET/HEAD", usage.s3_get, "requests", p["s3_get_request"]),
        line("SQS", usage.sqs_requests, "requests", p["sqs_request"]),
        line("DynamoDB writes", usage.dynamodb_writes, "WRU", p["dynamodb_write_request"]),
    ]
    return Estimate(tuple(lines), usage, p)


def total_usage(items: Iterable[Usage]) -> Usage:
    """The usage of several videos added up, for the run's total."""
    out = Usage()
    for u in items:
        out = out + u
    return out


def run_estimates(data: RunData, prices: Prices | None = None) -> tuple[Estimate, list[Estimate]]:
    """The run's estimate and one per video (same order as ``data.videos``)."""
    per_video = usages(data)
    total = total_usage(per_video)
    if not per_video:
        total.timed = data.stages is not None
    return estimate(total, prices), [estimate(u, prices) for u in per_video]


# --------------------------------------------------------------------------- text


def usd(value: float | None) -> str:
    """Dollars with three significant digits for small sums ($0.0123, $0.000456), cents above $1."""
    if value is None:
        return "n/a"
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(abs(value))))
    return f"${value:.{decimals}f}"


def summary_line(total: Estimate) -> str:
    """The one line ``vidsift run`` prints about cost: total, per minute, and the DetectFaces calls
    tracking and the people filter avoided."""
    u = total.usage
    partial = "" if total.complete else " (without Lambda/SageMaker: no run.json)"
    parts = [f"Estimated AWS cost: {usd(total.total)}{partial} for {total.video_minutes:.2f} video min"]
    if total.per_minute is not None:
        parts[0] += f" ({usd(total.per_minute)}/min)"
    if total.avoided_ratio is not None:
        tracked = (f", {total.avoided_by_tracking} frames of people already seen (tracking: "
                   f"{u.tracks} {'person' if u.tracks == 1 else 'people'})"
                   if u.tracked_videos and total.avoided_by_tracking else "")
        parts.append(f"DetectFaces on {u.detect_faces_images} of {u.frames_sampled} sampled frames "
                     f"({total.avoided_ratio:.0%} avoided: {total.avoided_by_dedup} duplicates skipped, "
                     f"{total.avoided_by_person_filter} frames without people{tracked})")
    parts.append(f"DetectFaces on every frame alone {usd(total.every_frame_detect_faces)}, "
                 f"Rekognition Video {usd(total.rekognition_video)}")
    return "; ".join(parts) + (f". {total.prices.region} list prices as of {total.prices.as_of}, "
                               "check vidsift/report/prices.json")


# --------------------------------------------------------------------------- for the runner


def estimate_run(out: Path | str, run: dict[str, Any] | None = None,
                 prices: Prices | None = None) -> dict[str, Any]:
    """The run's estimated AWS cost as plain numbers, for run.json's ``"cost"``.

    ``run``: the run.json document about to be written (its stages, videos and settings),
    when the runner calls this before writing it; by default ``out/run.json`` is read.
    ``usd`` is None when Lambda and SageMaker could not be measured (no stage times), so a
    partial sum is never taken for the total; ``usd_known`` is that partial sum.
    """
    total, _ = run_estimates(load(Path(out), run=run), prices)
    u = total.usage
    return {
        "usd": total.total if total.complete else None,
        "usd_known": total.total,
        "video_minutes": total.video_minutes,
        "usd_per_video_minute": total.per_minute if total.complete else None,
        "detect_faces_calls": u.detect_faces_images,
        "frames_sampled": u.frames_sampled,
        "tracks": u.tracks,
        "lines": {line.component: line.usd for line in total.lines},
        "region": total.prices.region,
        "prices_as_of": total.prices.as_of,
    }

