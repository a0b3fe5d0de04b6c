"""``vidsift run``: drop videos into the local raw bucket and let the stages do the rest.

Nothing here calls a handler directly: the videos go in through S3 exactly as the edge
uploader sends them, and the dispatcher drains the queues S3 feeds.
"""

from __future__ import annotations

import json
import mimetypes
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vidsift import aws, contract
from vidsift.core import keys
from vidsift.core.layout import Layout
from vidsift.local.bars import VideoProgress
from vidsift.local.dispatcher import Dispatcher, StageStats, preload_handlers
from vidsift.local.results import RunResults, collect, export, export_frames
from vidsift.local.stack import LocalStack
from vidsift.stages import counting

#: Invocations at once in a run: detection starts on a video's first frames while
#: split_frames still decodes the rest, as Lambda would run them (measured: docs/tracking.md).
RUN_CONCURRENCY = 2


@dataclass
class VideoOutcome:
    """How one input video of ``vidsift run`` ended (frames, people, faces, tracks, errors), for the
    run's summary table and run.json."""

    path: Path
    key: str
    video_id: str | None = None
    frames_sampled: int = 0
    frames_with_people: int = 0
    faces: int = 0
    #: People followed through the video (rows of the tracks table).
    tracks: int = 0
    #: Rekognition DetectFaces calls the video cost (the frames chosen per track).
    detect_faces_calls: int = 0
    #: Messages track_people sent analyze_faces (one per group of tracks sharing frames).
    face_groups: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The video went through: it has an id and no error of its own."""
        return not self.errors and self.video_id is not None


@dataclass
class RunReport:
    """What ``vidsift run`` returns: every video's outcome, each stage's statistics and the
    collected results, and whether the pipeline finished (``ok`` decides the exit code)."""

    out: Path
    videos: list[VideoOutcome]
    stats: dict[str, StageStats]
    results: RunResults
    finished: bool
    unowned_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The run is a success: the pipeline drained, and every video and every error is accounted for."""
        return self.finished and not self.unowned_errors and all(v.ok for v in self.videos)


def upload_key(path: Path, index: int) -> str:
    """Keys keep the file's name (spaces, unicode and all) under the upload prefix; an index
    keeps two files of the same name apart."""
    return f"{contract.load()['raw_upload_prefix']}{index:04d}/{path.name}"


def upload(stack: LocalStack, path: Path, key: str, camera_id: str | None, recorded_at: str | None,
           dedup: bool = False) -> None:
    """Put one video into the local raw bucket with the metadata the edge would give it: the S3
    notification, not a direct call, starts the pipeline, as in the cloud."""
    meta: dict[str, str] = {}
    if camera_id:
        meta[contract.upload_key("camera_id")] = quote(camera_id, safe="")
    if recorded_at:
        meta[contract.upload_key("recorded_at")] = recorded_at
    if dedup:  # the per-video override a user would set on an upload to the cloud stack too
        meta[contract.upload_key("dedup")] = "on"
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    aws.client("s3").upload_file(str(path), stack.names.bucket("raw"), key,
                                 ExtraArgs={"Metadata": meta, "ContentType": content_type,
                                            "ServerSideEncryption": "AES256"})


def outcomes(stack: LocalStack, uploads: dict[str, Path], res: RunResults,
             unowned: list[str]) -> list[VideoOutcome]:
    """Each uploaded video's outcome from the collected results: the error records name objects,
    not videos, so they are matched back to the upload they came from."""
    raw = stack.names.bucket("raw")
    by_uri = {f"s3://{raw}/{key}": VideoOutcome(path=path, key=key) for key, path in uploads.items()}
    suffixes = tuple(contract.load()["video_suffixes"])
    for vo in by_uri.values():
        if not vo.key.endswith(suffixes):  # the bucket notification's filters, as in the cloud
            vo.errors.append(f"not processed: the raw bucket notifies the pipeline of {', '.join(suffixes)} "
                             "files only (all lowercase or all uppercase), as S3 does in the cloud")
    by_video: dict[str, VideoOutcome] = {}
    for summary in res.summaries.values():
        vo = by_uri.get(f"s3://{summary['source_bucket']}/{summary['source_key']}")
        if vo:
            vo.video_id, vo.frames_sampled = summary["video_id"], summary["frames_sampled"]
            by_video[vo.video_id] = vo
    people = defaultdict(int)
    for row in {r["record_id"]: r for r in res.people}.values():
        if row["person_count"]:
            people[row["video_id"]] += 1
    faces = defaultdict(int)
    for row in {r["record_id"]: r for r in res.faces}.values():
        faces[row["video_id"]] += 1
    tracks: dict[str, int] = defaultdict(int)
    for row in {r["record_id"]: r for r in res.tracks}.values():
        tracks[row["video_id"]] += 1
    for video, vo in by_video.items():
        vo.frames_with_people, vo.faces = people[video], faces[video]
        # What analyze_faces was handed: each group of tracks' frames, one DetectFaces each
        # (tracks that share a frame share its call, so the tracks' face_frames can overcount).
        work = aws.list_json(stack.names.bucket("people"), keys.faces_work_prefix(video))
        vo.tracks, vo.face_groups = tracks[video], len(work)
        vo.detect_faces_calls = sum(len(w["frames"]) for w in work)

    def owner(subject: str) -> VideoOutcome | None:
        if subject in by_uri:
            return by_uri[subject]
        video = subject.split("/", 3)[-1].split("/", 1)[0] if subject.startswith("s3://") else ""
        return by_video.get(video)

    for err in res.errors:
        vo = owner(err["subject"])
        msg = f"{err['stage']}: {err['reason']}"
        if vo is None:
            unowned.append(f"{msg} ({err['subject']})")
        elif msg not in vo.errors:
            vo.errors.append(msg)
    for stage, subjects in res.dlq.items():
        for subject in subjects:
            vo = owner(subject)
            if vo is None:
                unowned.append(f"{stage}: {subject} moved to the dead-letter queue")
            elif not any(e.startswith(f"{stage}:") for e in vo.errors):
                vo.errors.append(f"{stage}: message moved to the dead-letter queue")
    return list(by_uri.values())


def write_run_record(out: Path, videos: list[VideoOutcome], stats: dict[str, StageStats], unowned: list[str],
                     **settings: Any) -> None:
    """``run.json``: what the report and the cost estimate need beyond the tables (stage
    times, invocations, the memory each stage is configured with, per-video outcomes)."""
    doc = {
        "settings": settings,
        "stages": {s: {**asdict(st), "memory_mb": contract.stage(s)["memory_mb"]} for s, st in stats.items()},
        "videos": [{"file": v.path.name, "key": v.key, "video_id": v.video_id, "ok": v.ok,
                    "frames_sampled": v.frames_sampled, "frames_with_people": v.frames_with_people,
                    "faces": v.faces, "tracks": v.tracks, "detect_faces_calls": v.detect_faces_calls,
                    "face_groups": v.face_groups,
                    "errors": v.errors} for v in videos],
        "errors": unowned,
    }
    from vidsift.report.cost import estimate_run

    # The run's estimated AWS cost first, where a reader looks (vidsift.report.cost says how).
    est = estimate_run(out, run=doc)
    doc = {"cost": {"usd": est["usd"], "video_minutes": est["video_minutes"],
                    "usd_per_video_minute": est["usd_per_video_minute"],
                    "detect_faces_calls": est["detect_faces_calls"], "tracks": est["tracks"]}} | doc
    (out / "run.json").write_text(json.dumps(doc, indent=1))


def sweep_stalled(dispatcher: Dispatcher, timeout_s: float) -> bool:
    """The run's end plays the scheduled sweeper (vidsift.stages.sweeping): every queue is
    idle, so a video still without an end state is stalled now (a message lost, a send that
    never happened); it is finished (tracked with its gaps) or failed with its reason.
    Returns whether the work it released finished in time."""
    import time

    from vidsift.local.dispatcher import _acting_as
    from vidsift.settings import Settings
    from vidsift.stages import sweeping

    with _acting_as(sweeping.STAGE, "handler"):
        config = sweeping.SweepConfig.from_settings(Settings.from_env(), stall_after_s=0.0)
        result = sweeping.sweep(config, now=time.time() + 1)
    return dispatcher.run_until_idle(timeout_s=timeout_s) if result.finished else True


def run_videos(paths: list[Path], out: Path, *, fps: float = 1.0, keyframes: bool = False,
               camera_id: str | None = None, recorded_at: str | None = None, detector: str = "auto",
               progress: bool | str = True, timeout_s: float = 3600, dedup: bool = False,
               concurrency: int = RUN_CONCURRENCY, layout: Layout | None = None, visitors: bool = False,
               visitor_retention_days: float | None = None) -> RunReport:
    """``progress``: "bars" (True) on a terminal, "lines" (one plain line per finished video,
    for a pipe or a file), or "none" (False). ``concurrency``: invocations at once (Dispatcher).
    ``layout``: the cameras' lines and zones, stored where track_people reads them, as in the cloud.
    ``visitors``: opt-in visitor ids, kept across runs in ``out/visitors/`` (vidsift.local.visitors);
    visitors past their retention are deleted before the run starts."""
    from tqdm import tqdm

    view = ("bars" if progress else "none") if isinstance(progress, bool) else progress
    if view not in ("bars", "lines", "none"):
        raise ValueError(f"progress must be bars, lines or none, got {progress!r}")
    preload_handlers()
    if visitors:
        from vidsift.local.visitors import LocalStore
        from vidsift.settings import Settings
        from vidsift.stages import visitor_admin

        days = visitor_retention_days or Settings.from_env().visitors.retention_days
        visitor_admin.expire(LocalStore(out), days)  # locally, retention runs at the next run
    stack = LocalStack(sample_fps=fps, sample_mode="keyframes" if keyframes else "fps", detector=detector,
                       visitors_out=out if visitors else None)
    with stack:
        if layout is not None:
            counting.put_layout(stack.names.bucket("analytics"), layout)
        uploads = {upload_key(p, i): p for i, p in enumerate(paths)}
        for key, path in uploads.items():
            upload(stack, path, key, camera_id, recorded_at, dedup)
        bars: dict[str, Any] = {}
        video_bars: VideoProgress | None = None
        if view == "bars":
            bars = {s: tqdm(desc=f"{s:<30}", unit="msg", position=i, leave=True, total=0)
                    for i, s in enumerate(contract.STAGES)}
        if view != "none":
            video_bars = VideoProgress(stack, uploads, first_position=len(bars), view=view)

        # The frames with people go to the output folder while tracking and face analysis run
        # (mostly waiting on the face models), not after them: a pass starts with tracking.
        early: list[Future[set[str]]] = []
        exporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-frames")

        def on_batch(stage: str, stats: StageStats) -> None:
            if stage == "track_people" and not early:
                early.append(exporter.submit(export_frames, stack, out))
            if stage in bars:
                bar = bars[stage]
                bar.total = max(bar.total or 0, stats.received)
                bar.n = stats.succeeded + stats.failed
                bar.set_postfix(ok=stats.succeeded, failed=stats.failed, refresh=False)
                bar.refresh()
            if video_bars is not None:
                video_bars.update()

        dispatcher = Dispatcher(stack, on_batch=on_batch, concurrency=concurrency)
        finished = dispatcher.run_until_idle(timeout_s=timeout_s)
        if finished:
            finished = sweep_stalled(dispatcher, timeout_s)
        if video_bars is not None:
            video_bars.close()
        for bar in bars.values():
            bar.close()
        res = collect(stack)
        out.mkdir(parents=True, exist_ok=True)
        frames_done = early[0].result() if early else set()
        exporter.shutdown()
        export(stack, res, out, frames_done=frames_done)
        if layout is not None:  # what the report draws the lines and zones from
            (out / "cameras.json").write_text(layout.to_json())
        if visitors:
            from vidsift.local import visitors as local_visitors

            local_visitors.save(stack.names, out)
        unowned: list[str] = []
        videos = outcomes(stack, uploads, res, unowned)
        write_run_record(out, videos, dispatcher.stats, unowned, fps=fps, keyframes=keyframes, dedup=dedup)
        return RunReport(out=out, videos=videos, stats=dispatcher.stats, results=res, finished=finished,
                         unowned_errors=unowned)
