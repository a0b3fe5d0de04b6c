"""What split_frames does for one video or one segment of it, behind its thin handler.

The video is read where it lies (``S3RangeReader``: ranged GETs, a bounded block cache, no
copy in /tmp), sampled by ``vidsift.core.frames`` and each kept JPEG is put to the frames
bucket by a small pool of uploader threads, because one PutObject at a time would leave
the function waiting on the network for most of its (billed) time. Keys and content are
deterministic, so a retry overwrites instead of duplicating. Each frame carries the SHA-256
of its JPEG in its metadata (FrameMeta.content_sha256): the later stages key their work on
it and the frame key, not on the ETag, which with SSE-KMS changes on every rewrite.

The two units of work functions/split_frames.py runs once each (vidsift.stages.runtime.once)
are here: ``process_video`` (a video's notification) and ``process_segment`` (a segment
message this stage queued for itself); the handler only parses messages and reports failures.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import unquote

from vidsift import aws
from vidsift.contract import upload_key
from vidsift.core import completion, ids, keys, segments
from vidsift.core.dedup import parse_setting
from vidsift.core.errors import BadInputError, ConfigError
from vidsift.core.events import ObjectRef
from vidsift.core.frames import SamplingOptions, VideoFile, VideoInfo
from vidsift.core.messages import SegmentDoc, SegmentTask, VideoTask
from vidsift.core.records import FrameMeta, captured_at
from vidsift.logs import get_logger
from vidsift.settings import Settings
from vidsift.stages import barrier
from vidsift.stages.runtime import work_name

STAGE = "split_frames"
#: The stage's one logger (the handler logs through it too: one Powertools Logger per service).
logger = get_logger(STAGE)
#: Segments of one video share bucket, key and etag: the segment number is part of the key.
SEGMENT_KEY = "[bucket, key, etag, segment]"
#: Concurrent PutObjects per invocation; enough to hide S3 latency behind the decoder.
UPLOAD_THREADS = 8


@dataclass(frozen=True)
class SplitConfig:
    """split_frames' settings: the shared ones plus DEDUP, SEGMENT_SECONDS, SPLIT_QUEUE_URL."""

    frames_bucket: str
    options: SamplingOptions
    segment_seconds: float
    queue_url: str | None
    #: The tracking barrier (vidsift.core.completion); None: no tracking (a stack without it).
    tracking_table: str | None = None
    track_queue_url: str | None = None

    @classmethod
    def from_settings(cls, s: Settings) -> SplitConfig:
        """The shared sampling settings and split_frames' own part, put together; ConfigError
        when the sampling options do not hold together."""
        own = s.split
        try:
            options = SamplingOptions(fps=s.sample_fps, keyframes=s.sample_mode == "keyframes",
                                      jpeg_quality=s.jpeg_quality, max_side=s.max_frame_side,
                                      dedup_distance=own.dedup_distance)
        except ValueError as exc:
            raise ConfigError(f"sampling settings: {exc}") from exc
        return cls(frames_bucket=s.frames_bucket, options=options, segment_seconds=own.segment_seconds,
                   queue_url=own.queue_url, tracking_table=s.tracking_table, track_queue_url=s.track_queue_url)


def options_for(config: SplitConfig, meta: dict[str, str], what: str) -> SamplingOptions:
    """Per-video overrides travel as the raw object's user metadata (x-amz-meta-fps, -sample-mode, -dedup)."""
    base = config.options
    try:
        mode_key, fps_key, dedup_key = (upload_key(k) for k in ("sample_mode", "fps", "dedup"))
        mode = meta.get(mode_key)
        keyframes = base.keyframes if mode is None else mode == "keyframes"
        if mode not in (None, "fps", "keyframes"):
            raise ValueError(f"{mode_key} must be fps or keyframes, got {mode!r}")
        return SamplingOptions(fps=float(meta.get(fps_key, base.fps)), keyframes=keyframes,
                               jpeg_quality=base.jpeg_quality, max_side=base.max_side, max_bytes=base.max_bytes,
                               dedup_distance=parse_setting(meta[dedup_key]) if dedup_key in meta
                               else base.dedup_distance)
    except ValueError as exc:
        raise BadInputError(what, f"bad sampling metadata ({exc})") from exc


class Uploader:
    """PutObject with bounded concurrency: at most ``limit`` frames in memory or in flight,
    and the first failure is raised (the message is retried; keys are deterministic)."""

    def __init__(self, threads: int = UPLOAD_THREADS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="put")
        self._slots = threading.BoundedSemaphore(2 * threads)
        self._futures: set[Future[Any]] = set()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._slots.acquire()
        self._raise_failed()
        fut = self._pool.submit(fn, *args, **kwargs)
        self._futures.add(fut)
        fut.add_done_callback(lambda _f: self._slots.release())

    def _raise_failed(self) -> None:
        for fut in [f for f in self._futures if f.done()]:
            self._futures.discard(fut)
            fut.result()

    def drain(self) -> None:
        wait(self._futures)
        self._raise_failed()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.drain()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class Source:
    """The video object, as HeadObject saw it."""

    ref: ObjectRef
    size: int
    etag: str
    video_id: str
    camera_id: str
    recorded_at: str | None
    meta: dict[str, str]

    @classmethod
    def head(cls, ref: ObjectRef) -> Source:
        """The version the event names (its ETag, size, metadata), not whatever the key holds
        now: the key is asked first (deleted since: a bad input, the user's wish is kept), then,
        if it holds another version by now (overwritten before processing), that version."""
        try:
            head = aws.head_object(ref.bucket, ref.key)
            if ref.version_id and head.get("VersionId") not in (None, ref.version_id):
                head = aws.head_object(ref.bucket, ref.key, ref.version_id)
        except Exception as exc:
            if aws.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise BadInputError(ref.uri, "the object no longer exists (deleted before processing)") from exc
            raise
        size = int(head.get("ContentLength", 0))
        if size == 0:
            raise BadInputError(ref.uri, "the object is empty (0 bytes)")
        etag = str(head.get("ETag", ref.etag)).strip('"')
        meta = head.get("Metadata", {})
        return cls(ref=ref, size=size, etag=etag, video_id=ids.video_id(ref.bucket, ref.key, etag),
                   camera_id=unquote(meta.get(upload_key("camera_id"), "")) or "unknown",
                   recorded_at=meta.get(upload_key("recorded_at")),
                   meta=meta)

    def reader(self) -> aws.S3RangeReader:
        return aws.S3RangeReader(self.ref.bucket, self.ref.key, size=self.size, etag=self.etag,
                                 version_id=self.ref.version_id)

    @property
    def version(self) -> str:
        return self.ref.version_id


def _sample_range(config: SplitConfig, src: Source, video: VideoFile, reader: aws.S3RangeReader,
                  options: SamplingOptions, *, start_s: float, end_s: float | None, segment: int,
                  segment_count: int, started: float) -> tuple[SegmentDoc, BadInputError | None]:
    """Sample one range and put its frames; returns the segment document and a late error
    (frames were produced, then the stream turned out truncated or damaged)."""
    info = VideoInfo()
    error: BadInputError | None = None
    first_index = last_index = None
    with Uploader() as up:
        try:
            for frame in video.sample(options, info, start_s=start_s, end_s=end_s):
                fm = FrameMeta(video_id=src.video_id, source_bucket=src.ref.bucket, source_key=src.ref.key,
                               camera_id=src.camera_id, frame_index=frame.index, frame_time_s=frame.time_s,
                               captured_at=captured_at(src.recorded_at, frame.time_s),
                               content_sha256=hashlib.sha256(frame.jpeg).hexdigest(), segment=segment)
                up.submit(aws.put_object, config.frames_bucket, keys.frame_key(src.video_id, frame.index),
                          frame.jpeg, content_type="image/jpeg", metadata=fm.to_s3())
                first_index = frame.index if first_index is None else first_index
                last_index = frame.index
        except BadInputError as exc:
            error = exc
    doc = SegmentDoc(
        video_id=src.video_id, source_bucket=src.ref.bucket, source_key=src.ref.key,
        camera_id=src.camera_id, recorded_at=src.recorded_at, size=src.size,
        width=info.width, height=info.height, codec=info.codec, container=info.container,
        duration_s=info.duration_s, rotation=info.rotation, nominal_fps=info.nominal_fps,
        keyframe_interval_s=info.keyframe_interval_s,
        sample_fps=None if options.keyframes else options.fps, keyframes=options.keyframes,
        dedup_distance=options.dedup_distance, segments=segment_count,
        segment_seconds=config.segment_seconds if segment_count > 1 else None,
        segment=segment, start_s=start_s, end_s=end_s, strategy=info.strategy,
        frames_decoded=info.frames_decoded, frames_sampled=info.frames_sampled,
        frames_kept=info.frames_kept, duplicates_skipped=info.duplicates_skipped, seeks=info.seeks,
        decode_errors=info.decode_errors, first_index=first_index, last_index=last_index,
        bytes_read=reader.bytes_fetched, seconds=round(time.monotonic() - started, 3),
        errors=[error.reason] if error else [], warnings=info.warnings[:20],
    )
    _report_sampled(config, src.video_id, doc.to_json())  # the segment document's sampling fields
    return doc, error


def _report_sampled(config: SplitConfig, video_id: str, doc: dict[str, Any]) -> None:
    """Tell the tracking barrier how many frames this segment wrote; if detection already
    finished them all (a small video, a retry), tell track_people the segment is ready."""
    if not config.tracking_table:
        return
    fields = completion.sampled_fields(int(doc["frames_kept"] or 0), doc["first_index"], doc["last_index"],
                                     float(doc["start_s"] or 0.0))
    barrier.report_sampled(config.tracking_table, config.track_queue_url, video_id, int(doc["segment"]), fields)


def _span_s(config: SplitConfig, options: SamplingOptions) -> float:
    """Segment length: the setting, shortened so that no segment holds more than
    completion.MAX_SEGMENT_FRAMES sampled frames (its progress item stays small at any fps)."""
    if options.keyframes:
        return config.segment_seconds
    return min(config.segment_seconds, completion.MAX_SEGMENT_FRAMES / max(options.fps, 1e-9))


def _per(spans: list[tuple[float, float | None]], options: SamplingOptions) -> int:
    """Grid points per segment (every segment but the last holds exactly that many)."""
    return round(Fraction(spans[1][0]).limit_denominator(1_000_000) * options.rate) if len(spans) > 1 else 0


def _failing(config: SplitConfig, src: Source) -> Any:
    """Record the video's end state (failed, with the reason) when its input turns out unusable."""
    @contextmanager
    def guard() -> Any:
        try:
            yield
        except BadInputError as exc:
            if config.tracking_table:
                barrier.fail_video(config.tracking_table, src.video_id, reason=str(exc), source=src.ref.uri,
                                   version=src.version)
            raise
    return guard()


def split_video(config: SplitConfig, ref: ObjectRef, queue_url: Callable[[], str | None]) -> dict[str, Any]:
    """A video arrived: sample it whole, or (when longer than SEGMENT_SECONDS) queue its segments."""
    started = time.monotonic()
    src = Source.head(ref)
    with _failing(config, src):
        options = options_for(config, src.meta, ref.uri)
        reader = src.reader()
        with VideoFile(reader, what=ref.uri) as video:
            spans = segments.plan(video.duration_s, options, _span_s(config, options))
            url = queue_url() if len(spans) > 1 else None
            if not url:
                spans = [(0.0, None)]
            if config.tracking_table:  # before any frame exists: detect_people finds each frame's segment
                barrier.begin_video(config.tracking_table, src.video_id, segments=len(spans),
                                    per=_per(spans, options), source=ref.uri, version=src.version)
            if url:
                tasks = [SegmentTask(bucket=ref.bucket, key=ref.key, etag=src.etag, size=src.size, start_s=start,
                                     end_s=end, segment=n, segments=len(spans), options=segments.options_doc(options),
                                     camera_id=src.camera_id, recorded_at=src.recorded_at, version_id=src.version)
                         for n, (start, end) in enumerate(spans)]
                aws.send_messages(url, [t.to_json() for t in tasks])
                return {"video_id": src.video_id, "source_key": ref.key, "segments": len(spans),
                        "duration_s": video.duration_s, "queued": True, "bytes_read": reader.bytes_fetched}
            doc, error = _sample_range(config, src, video, reader, options, start_s=0.0, end_s=None, segment=0,
                                       segment_count=1, started=started)
    summary = segments.merge([doc.to_json()])
    aws.put_json(config.frames_bucket, keys.summary_key(src.video_id), summary)
    if error:
        raise error
    return summary


def split_segment(config: SplitConfig, task: SegmentTask) -> dict[str, Any]:
    """One segment: sample it, record it, and write the summary if it completed the video."""
    started = time.monotonic()
    src = Source.head(ObjectRef(bucket=task.bucket, key=task.key, size=task.size, etag=task.etag,
                                version_id=task.version_id))
    if src.etag != task.etag:
        raise BadInputError(task.uri, "the object changed since its segments were planned (new ETag); the new "
                                      "version is processed on its own notification")
    src = Source(ref=src.ref, size=src.size, etag=src.etag, video_id=src.video_id, camera_id=task.camera_id,
                 recorded_at=task.recorded_at, meta=src.meta)
    options = task.sampling_options()
    reader = src.reader()
    with VideoFile(reader, what=task.uri) as video:
        doc, error = _sample_range(config, src, video, reader, options, start_s=task.start_s, end_s=task.end_s,
                                   segment=task.segment, segment_count=task.segments, started=started)
    aws.put_json(config.frames_bucket, keys.segment_key(src.video_id, task.segment), doc.to_json())
    docs = _segment_docs(config.frames_bucket, src.video_id)
    if len({d["segment"] for d in docs}) == task.segments:
        aws.put_json(config.frames_bucket, keys.summary_key(src.video_id), segments.merge(docs))
    if error:
        raise error
    return {"video_id": doc.video_id, "segment": doc.segment, "segments": doc.segments,
            "frames_kept": doc.frames_kept, "seconds": doc.seconds}


def _segment_docs(bucket: str, video: str) -> list[dict[str, Any]]:
    """The video's segment documents as stored (merge reads them as they are, old or new)."""
    return list(aws.list_json(bucket, keys.segment_prefix(video)))


queue_url_from_arn = aws.queue_url_from_arn


@work_name("functions.split_frames.process_video")  # its records' name from before the move
def process_video(obj: dict[str, Any]) -> dict[str, Any]:
    """One video's notification (``obj``: a VideoTask), once per version."""
    config = SplitConfig.from_settings(Settings.from_env())
    task = VideoTask.from_json(obj)
    source_arn = task.source_queue_arn

    def queue_url() -> str | None:
        url = config.queue_url or (queue_url_from_arn(source_arn) if source_arn else None)
        if not url:
            logger.warning("long video but no queue to fan out to (SPLIT_QUEUE_URL unset): sampling it whole")
        return url

    ref = ObjectRef(bucket=task.bucket, key=task.key, size=task.size, etag=task.etag, version_id=task.version_id)
    result = split_video(config, ref, queue_url)
    logger.info("video queued as segments" if result.get("queued") else "video split", extra=result)
    return result


@work_name("functions.split_frames.process_segment")  # its records' name from before the move
def process_segment(obj: dict[str, Any]) -> dict[str, Any]:
    """One segment message (``obj``: SegmentTask.to_obj()), once per SEGMENT_KEY."""
    result = split_segment(SplitConfig.from_settings(Settings.from_env()), SegmentTask.from_obj(obj))
    logger.info("segment split", extra=result)
    return result
