"""``vidsift plan``: what a fleet of cameras asks of AWS, before it asks.

For N cameras recording H hours a day at F sampled frames per second, with P people
walking into view per minute per camera, this works out the rates the pipeline must
sustain while the cameras record (times a peak factor: uploads come in bursts), the Lambda
concurrency (Little's law: arrivals per second x seconds each), the DetectFaces rate, the
SageMaker endpoint's concurrency, DynamoDB writes and Firehose throughput, which default
quotas (and which of vidsift's own caps in vidsift/contract.json) that meets or exceeds,
and the monthly cost at the list prices of vidsift/report/prices.json (the same table as
the run estimate, vidsift/report/cost.py).

It is a model, not a measurement: every per-unit figure it assumes is a named constant
below (``ASSUMPTIONS`` prints them), to be replaced by what a real deployment measures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from vidsift import contract
from vidsift.report.cost import SAGEMAKER_MEMORY_MB, Prices, default_prices

DAYS_PER_MONTH = 30
#: detect_people frames per endpoint call (contract batch_size) and the endpoint's time per
#: frame (YOLO11n on a 4 GB serverless endpoint's CPU: an assumption, not measured here).
ENDPOINT_SECONDS_PER_FRAME = 0.10
#: detect_people's own time per invocation besides the endpoint (S3 HEAD/COPY, DynamoDB, SQS).
DETECT_OVERHEAD_S = 1.0
#: split_frames samples a video at this multiple of real time on Lambda (local: 36x at 1 fps
#: with keyframes, docs/frame-sampling.md; Lambda's 2 GB is slower than 2 local cores).
SPLIT_SPEED = 20.0
#: Clips the edge uploads are this long (edge/ max clip length), a split_frames invocation each.
CLIP_SECONDS = 20.0
#: track_people per frame of a segment (norfair, colours), and per invocation.
TRACK_SECONDS_PER_FRAME = 0.01
TRACK_OVERHEAD_S = 1.0
#: One Rekognition call (DetectFaces reads the frame from S3), as the function waits on it.
REKOGNITION_CALL_S = 0.5
#: Bytes of one row as JSON (people: a frame's boxes; faces: a face's attributes; tracks: a visit).
ROW_BYTES = {"people": 600, "faces": 1200, "tracks": 1500}
#: Firehose bills each record rounded up to 5 KB.
FIREHOSE_RECORD_BILLED = 5 * 1024
#: DynamoDB write request units per frame: its boxes item, and its share of its segment's
#: progress update (one per batch of 16, about 2 WRU for a growing item).
DDB_WRITES_PER_FRAME = 1.0 + 2.0 / 16
#: Idempotency records: 2 writes per handled piece of work (in progress, then done).
IDEMPOTENCY_WRITES = 2
#: S3 requests per frame: PUT by split_frames, GET by the endpoint, HEAD + COPY for frames with people.
S3_PUT_PER_FRAME, S3_GET_PER_FRAME = 1.0, 1.0
#: SQS requests per frame: the S3 notification's send, and its share of a batch's receive and delete.
SQS_PER_FRAME = 1.0 + 2.0 / 16

#: Default quotas (AWS's service quotas pages) the plan is checked against.
QUOTAS = {
    "lambda_concurrency": (1000, "Lambda concurrent executions per account and region (new accounts may start "
                                 "far lower: check Service Quotas)"),
    "rekognition_tps": (5, "Rekognition DetectFaces transactions per second: 5-50 by region by default "
                           "(vidsift's budget: rekognitionTps, default 5)"),
    "endpoint_concurrency": (200, "SageMaker serverless endpoint max concurrency (deploy.py --max-concurrency, "
                                  "default 10; 200 at most per endpoint)"),
    "dynamodb_wru": (40000, "DynamoDB on-demand write request units per second per table"),
    "firehose_records": (1000, "Firehose Direct PUT records per second per stream (5,000 in us-east-1, us-west-2, "
                               "eu-west-1)"),
    "firehose_mib": (1.0, "Firehose Direct PUT MiB per second per stream (5 in us-east-1, us-west-2, eu-west-1)"),
}


@dataclass(frozen=True)
class Fleet:
    """The deployment being planned (cameras, hours, people per minute...): the inputs of a capacity
    and cost plan before anything is deployed."""

    cameras: int
    hours_per_day: float = 12.0
    fps: float = 1.0
    people_per_minute: float = 2.0
    #: How long one person stays in view.
    visit_seconds: float = 15.0
    #: Busiest rate over the average while the cameras record.
    peak_factor: float = 2.0
    #: Frames of a visit sent to DetectFaces (the best one, one more per faceRevisitSeconds, at most faceFramesMax).
    face_frames_per_visit: float = 1.0
    #: Faces searched in the known-faces collection (SearchFacesByImage, one per face).
    known_faces: bool = False


@dataclass
class Need:
    """One quantity the fleet needs against the AWS limit it runs into (``over`` when it would be
    throttled), so a plan shows the quota to raise before a deploy rather than after."""

    what: str
    value: float
    unit: str
    limit: float | None = None
    limit_what: str = ""

    @property
    def over(self) -> bool:
        """Whether the need exceeds the account's limit: the quota to raise before deploying."""
        return self.limit is not None and self.value > self.limit


@dataclass
class Plan:
    """What a fleet needs and costs a month, as ``vidsift plan`` prints it and JSON for programs."""

    fleet: Fleet
    needs: list[Need] = field(default_factory=list)
    monthly_usd: dict[str, float] = field(default_factory=dict)

    @property
    def total_usd(self) -> float:
        """The fleet's estimated monthly cost, all components."""
        return sum(self.monthly_usd.values())

    def to_doc(self) -> dict[str, Any]:
        """The plan as JSON (``vidsift plan --format json``), for a program or a spreadsheet."""
        return {"fleet": asdict(self.fleet), "needs": [{**asdict(n), "over": n.over} for n in self.needs],
                "monthly_usd": {**{k: round(v, 2) for k, v in self.monthly_usd.items()},
                                "total": round(self.total_usd, 2)}}


def plan(fleet: Fleet, prices: Prices | None = None, rekognition_tps: float = 5.0) -> Plan:
    """The fleet's needs at its peak while recording, and its month's cost."""
    prices = prices or default_prices()
    stages = contract.load()["stages"]
    if fleet.cameras < 1 or not 0 < fleet.hours_per_day <= 24 or fleet.fps <= 0 or fleet.people_per_minute < 0:
        raise ValueError("cameras >= 1, 0 < hours per day <= 24, fps > 0, people per minute >= 0")
    peak = fleet.peak_factor
    n, fps = fleet.cameras, fleet.fps
    # Rates per second while recording, at the peak.
    frames_s = n * fps * peak
    visits_s = n * fleet.people_per_minute / 60.0 * peak
    occupied = 1.0 - math.exp(-fleet.people_per_minute * fleet.visit_seconds / 60.0)  # frames with anyone
    detect_faces_s = visits_s * fleet.face_frames_per_visit
    searches_s = detect_faces_s if fleet.known_faces else 0.0
    batch = stages["detect_people"]["batch_size"]
    detect_invocations_s = frames_s / batch
    detect_s = batch * ENDPOINT_SECONDS_PER_FRAME + DETECT_OVERHEAD_S
    split_invocations_s = n * peak / CLIP_SECONDS
    split_s = CLIP_SECONDS / SPLIT_SPEED
    track_invocations_s = split_invocations_s
    track_s = CLIP_SECONDS * fps * TRACK_SECONDS_PER_FRAME + TRACK_OVERHEAD_S
    faces_invocations_s = visits_s / max(1, stages["analyze_faces"]["batch_size"])
    # Each call waits for REKOGNITION_CALL_S, and (with rate limiting) no faster than the budget allows.
    faces_concurrency = (detect_faces_s + searches_s) * REKOGNITION_CALL_S
    concurrency = {
        "split_frames": split_invocations_s * split_s,
        "detect_people": detect_invocations_s * detect_s,
        "track_people": track_invocations_s * track_s,
        "analyze_faces": faces_concurrency,
    }
    rows_s = {"people": frames_s, "faces": detect_faces_s * occupied, "tracks": visits_s}
    firehose_records = max(rows_s.values())
    firehose_mib = max(rows_s[t] * ROW_BYTES[t] for t in rows_s) / (1 << 20)
    ddb_wru = frames_s * DDB_WRITES_PER_FRAME + (split_invocations_s + faces_invocations_s) * IDEMPOTENCY_WRITES
    endpoint = frames_s * ENDPOINT_SECONDS_PER_FRAME

    def quota(key: str) -> tuple[float, str]:
        return QUOTAS[key]

    out = Plan(fleet)
    for stage, value in concurrency.items():
        cap = stages[stage]["max_concurrency"]
        out.needs.append(Need(f"Lambda {stage} concurrency", value, "instances", cap,
                              f"vidsift/contract.json max_concurrency of {stage}"))
    out.needs.append(Need("Lambda concurrency, all functions", sum(concurrency.values()), "instances",
                          *quota("lambda_concurrency")))
    out.needs.append(Need("Rekognition calls per second (DetectFaces + searches)", detect_faces_s + searches_s,
                          "calls/s", rekognition_tps, f"rekognitionTps budget ({rekognition_tps:g}); "
                          f"{quota('rekognition_tps')[1]}"))
    out.needs.append(Need("SageMaker endpoint concurrency", endpoint, "requests in flight",
                          stages["detect_people"]["max_concurrency"],
                          f"deploy.py --max-concurrency default; {quota('endpoint_concurrency')[1]}"))
    out.needs.append(Need("DynamoDB writes (tracking + idempotency tables)", ddb_wru, "WRU/s", *quota("dynamodb_wru")))
    out.needs.append(Need("Firehose records per second (busiest stream)", firehose_records, "records/s",
                          *quota("firehose_records")))
    out.needs.append(Need("Firehose throughput (busiest stream)", firehose_mib, "MiB/s", *quota("firehose_mib")))

    # The month: daily totals (recording hours at the average rate, no peak) x 30.
    day_s = fleet.hours_per_day * 3600.0 * DAYS_PER_MONTH
    frames = n * fps * day_s
    visits = n * fleet.people_per_minute / 60.0 * day_s
    calls = visits * fleet.face_frames_per_visit
    searches = calls if fleet.known_faces else 0.0
    clips = n * day_s / CLIP_SECONDS
    gb_s = {
        "split_frames": clips * split_s * stages["split_frames"]["memory_mb"] / 1024,
        "detect_people": frames / batch * detect_s * stages["detect_people"]["memory_mb"] / 1024,
        "track_people": clips * track_s * stages["track_people"]["memory_mb"] / 1024,
        "analyze_faces": (calls + searches) * REKOGNITION_CALL_S * stages["analyze_faces"]["memory_mb"] / 1024,
    }
    requests = clips * 2 + frames / batch + visits / max(1, stages["analyze_faces"]["batch_size"])
    records = frames + calls * occupied + visits
    out.monthly_usd = {
        "Lambda": sum(gb_s.values()) * prices["lambda_gb_second"].usd + requests * prices["lambda_request"].usd,
        "SageMaker endpoint": frames * ENDPOINT_SECONDS_PER_FRAME * prices.sagemaker(SAGEMAKER_MEMORY_MB).usd,
        "Rekognition": (calls + searches) * prices["rekognition_detect_faces_image"].usd,
        "Firehose": records * FIREHOSE_RECORD_BILLED / (1 << 30) * prices["firehose_gb"].usd,
        "S3 requests": frames * (S3_PUT_PER_FRAME * prices["s3_put_request"].usd
                                 + S3_GET_PER_FRAME * prices["s3_get_request"].usd),
        "SQS": frames * SQS_PER_FRAME * prices["sqs_request"].usd,
        "DynamoDB": (frames * DDB_WRITES_PER_FRAME + (clips + visits) * IDEMPOTENCY_WRITES)
        * prices["dynamodb_write_request"].usd,
    }
    return out


ASSUMPTIONS = (
    f"Rates are at the peak (peak factor x the average while recording); costs use the average over "
    f"{DAYS_PER_MONTH} days of recording hours.",
    f"Endpoint {ENDPOINT_SECONDS_PER_FRAME:g} s per frame ({SAGEMAKER_MEMORY_MB} MB serverless), detect_people "
    f"{DETECT_OVERHEAD_S:g} s per batch besides; split_frames at {SPLIT_SPEED:g}x real time on {CLIP_SECONDS:g} s "
    f"clips; {REKOGNITION_CALL_S:g} s per Rekognition call; rows of {ROW_BYTES} bytes, billed 5 KB each.",
    "Not counted: S3 storage, data transfer, CloudWatch Logs, KMS requests (kms=true), Athena scans.",
)


def render(p: Plan) -> str:
    """The plan as text: each need beside its limit, the quotas to raise, then the monthly cost."""
    f = p.fleet
    lines = [f"{f.cameras} cameras, {f.hours_per_day:g} h/day at {f.fps:g} fps, {f.people_per_minute:g} people/min "
             f"per camera (peak x{f.peak_factor:g})", "",
             f"{'need at peak':<58} {'value':>12}  {'limit':>9}  over?"]
    for n in p.needs:
        limit = "" if n.limit is None else f"{n.limit:g}"
        lines.append(f"{n.what:<58} {n.value:>12.2f}  {limit:>9}  {'RAISE' if n.over else 'ok'}")
    raise_ = list(dict.fromkeys(f"- {n.limit_what} (now {n.limit:g})" for n in p.needs if n.over))
    lines += ["", "to raise:" if raise_ else "to raise: nothing, all within the defaults", *raise_, ""]
    lines.append(f"{'monthly cost (list prices, ' + default_prices().region + ')':<58} {'usd':>12}")
    for k, v in p.monthly_usd.items():
        lines.append(f"{k:<58} {v:>12.2f}")
    lines.append(f"{'total':<58} {p.total_usd:>12.2f}")
    return "\n".join(lines)


def add_parser(sub: Any) -> None:
    """Register ``plan`` on the ``vidsift`` command's subparsers."""
    p = sub.add_parser("plan", help="what a fleet of cameras needs from AWS: concurrency, rates, quotas, monthly cost")
    p.add_argument("--cameras", type=int, required=True, help="number of cameras")
    p.add_argument("--hours", type=float, default=12.0, help="hours of footage per camera per day (default 12)")
    p.add_argument("--fps", type=float, default=1.0, help="sampled frames per second (sampleFps, default 1)")
    p.add_argument("--people-per-minute", type=float, default=2.0,
                   help="people walking into view per minute per camera (default 2)")
    p.add_argument("--visit-seconds", type=float, default=15.0, help="how long a person stays in view (default 15)")
    p.add_argument("--peak", type=float, default=2.0, help="busiest rate over the average (default 2)")
    p.add_argument("--face-frames", type=float, default=1.0, help="DetectFaces calls per visit (default 1)")
    p.add_argument("--known-faces", action="store_true", help="faces are searched in a known-faces collection")
    p.add_argument("--rekognition-tps", type=float, default=5.0, help="the rekognitionTps budget (default 5)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args: Any) -> int:
    """``vidsift plan``: what a fleet of cameras needs (quotas) and costs a month, before deploying."""
    import json
    import sys

    fleet = Fleet(cameras=args.cameras, hours_per_day=args.hours, fps=args.fps,
                  people_per_minute=args.people_per_minute, visit_seconds=args.visit_seconds, peak_factor=args.peak,
                  face_frames_per_visit=args.face_frames, known_faces=args.known_faces)
    try:
        result = plan(fleet, rekognition_tps=args.rekognition_tps)
    except ValueError as exc:
        print(f"vidsift plan: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps({**result.to_doc(), "assumptions": list(ASSUMPTIONS)}, indent=2))
    else:
        print(render(result))
        print("\n".join(["", "assumptions:", *(f"- {a}" for a in ASSUMPTIONS)]))
    return 0
