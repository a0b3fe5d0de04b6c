"""Stage 1: a video arrived in the raw bucket; sample its frames into the frames bucket."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidsift import aws
from vidsift.config import Settings
from vidsift.core import ids
from vidsift.core.errors import BadInputError
from vidsift.core.events import ObjectRef, parse_s3_message
from vidsift.core.frames import SamplingOptions, VideoInfo, sample_frames
from vidsift.core.records import FrameMeta, captured_at
from vidsift.logs import get_logger
from vidsift.runtime import once, record_bad_input, sqs_processor

STAGE = "split_frames"
logger = get_logger(STAGE)
processor = sqs_processor()
_context: Any = None


def _options(settings: Settings, meta: dict[str, str], what: str) -> SamplingOptions:
    """Per-video overrides travel as the raw object's user metadata (x-amz-meta-fps...)."""
    mode = meta.get("sample-mode", settings.sample_mode)
    try:
        fps = float(meta.get("fps", settings.sample_fps))
        return SamplingOptions(fps=fps, keyframes=mode == "keyframes", jpeg_quality=settings.jpeg_quality,
                               max_side=settings.max_frame_side)
    except ValueError as exc:
        raise BadInputError(what, f"bad sampling metadata ({exc})") from exc


def process_video(obj: dict[str, Any]) -> dict[str, Any]:
    ref = ObjectRef(**obj)
    settings = Settings.from_env()
    started = time.monotonic()
    try:
        head = aws.head_object(ref.bucket, ref.key)
    except Exception as exc:
        if aws.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise BadInputError(ref.uri, "the object no longer exists (deleted before processing)") from exc
        raise
    size = int(head.get("ContentLength", 0))
    if size == 0:
        raise BadInputError(ref.uri, "the object is empty (0 bytes)")
    etag = str(head.get("ETag", ref.etag)).strip('"')
    meta = head.get("Metadata", {})
    video = ids.video_id(ref.bucket, ref.key, etag)
    camera = unquote(meta.get("camera-id", "")) or "unknown"
    recorded_at = meta.get("recorded-at")
    options = _options(settings, meta, ref.uri)
    reader = aws.S3RangeReader(ref.bucket, ref.key, size=size, etag=etag)
    info = VideoInfo()
    for frame in sample_frames(reader, options, info, what=ref.uri):
        fm = FrameMeta(video_id=video, source_bucket=ref.bucket, source_key=ref.key, camera_id=camera,
                       frame_index=frame.index, frame_time_s=frame.time_s,
                       captured_at=captured_at(recorded_at, frame.time_s))
        aws.put_object(settings.frames_bucket, ids.frame_key(video, frame.index), frame.jpeg,
                       content_type="image/jpeg", metadata=fm.to_s3())
    summary = {
        "video_id": video, "source_bucket": ref.bucket, "source_key": ref.key, "camera_id": camera,
        "width": info.width, "height": info.height, "codec": info.codec, "duration_s": info.duration_s,
        "frames_decoded": info.frames_decoded, "frames_sampled": info.frames_sampled,
        "sample_fps": None if options.keyframes else options.fps, "keyframes": options.keyframes,
        "bytes_read": reader.bytes_fetched, "size": size, "seconds": round(time.monotonic() - started, 3),
    }
    aws.put_json(settings.frames_bucket, ids.summary_key(video), summary)
    logger.info("video split", extra=summary)
    return summary


def record_handler(record: SQSRecord) -> None:
    try:
        for ref in parse_s3_message(record.body):
            try:
                once(process_video, {"bucket": ref.bucket, "key": ref.key, "etag": ref.etag, "size": ref.size},
                     _context)
            except BadInputError as exc:
                record_bad_input(logger, STAGE, exc, subject=ref.uri, message_id=record.message_id)
                raise
    except BadInputError as exc:
        if exc.what == "SQS message":
            record_bad_input(logger, STAGE, exc, subject=f"sqs:{record.message_id}", message_id=record.message_id)
        raise


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _context
    _context = context
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
