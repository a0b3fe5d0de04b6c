"""The detection stage (detect_people's service): frames arrived; ask the person detector
about the whole batch in one call, copy the frames with people to the people bucket, alert
on the people the rules watch for, and record each frame's boxes for track_people
(vidsift.core.completion), which writes the ``people`` rows once it knows whose boxes they are.

The call asks for boxes down to PERSON_TRACK_CONFIDENCE; those under PERSON_MIN_CONFIDENCE
(Detection.low_boxes) are only recorded for the tracker, which lets them continue someone
already tracked (ByteTrack's second pass). Everything decided here reads the confident
boxes alone: which frames have people (copied, alerted on), their count and best score.

The edge's alert snapshots arrive on the same queue (the alert fast lane,
vidsift.core.snapshots): they are detected in the same batch, copied to the people bucket
marked alert-only when they show people, and alerted on, but write no row. With no alert
rule configured they are acknowledged without calling the endpoint: nobody is waiting.

A frame's work is done when the tracking table holds its boxes from the same bytes (its
metadata, content hash included) and its video's progress counts it: a replayed event, or
identical frames rewritten by a split_frames retry (new ETags under SSE-KMS), is left out of
the call. One BatchGetItem asks that for the whole batch by the frames' keys before the
endpoint call (only a frame found recorded is read for its metadata, to compare), and one
BatchWriteItem plus one UpdateItem per video record it, instead of a Powertools idempotency
record per frame: every write here is keyed by the frame, so a repeated one changes nothing.
Each new frame's metadata comes back from the endpoint, which reads the frame anyway: no
HeadObject per frame. A snapshot's work (an alert, no record) stays keyed on its object
version through Powertools' idempotency.

functions/detect_people.py parses the event and reports each message's failures; everything
else is here: ``prepare`` (what is done already, the endpoint call), ``finish`` (copies,
alerts, the tracking records), the snapshots' work, and giving frames up for tracking."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vidsift import aws, contract
from vidsift.core import keys
from vidsift.core.detection import Box, Detection, build_request, parse_response
from vidsift.core.errors import BadInputError, S3AccessError
from vidsift.core.events import ObjectRef, parse_s3_message
from vidsift.core.records import FrameMeta
from vidsift.core.snapshots import is_snapshot, snapshot_meta
from vidsift.logs import get_logger
from vidsift.settings import Settings
from vidsift.stages import alerting, tracking
from vidsift.stages.runtime import OBJECT_KEY, done, work_name

STAGE = "detect_people"
MISSING_FRAME = "the frame does not exist (deleted before processing)"
#: The stage's one logger (the handler logs through it too: one Powertools Logger per service).
logger = get_logger(STAGE)


@dataclass
class Batch:
    """What the single endpoint call decided for each message of the batch: built by
    ``prepare`` and ``finish`` before any message is reported, because one call serves the
    whole batch; the handler then reports each message from it."""

    frames: dict[str, list[tuple[ObjectRef, Detection]]] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)
    #: The frames each message named, to say which ones a failure concerns.
    refs: dict[str, list[ObjectRef]] = field(default_factory=dict)
    #: Snapshots acknowledged without detection (no alert rule is configured).
    skipped: list[ObjectRef] = field(default_factory=list)
    #: Each frame's metadata, read once before the endpoint call.
    metas: dict[ObjectRef, FrameMeta] = field(default_factory=dict)
    #: Each snapshot's idempotency payload and key.
    work: dict[ObjectRef, tuple[dict[str, Any], str]] = field(default_factory=dict)
    #: Frames whose work is done already (a replay, identical frames rewritten): not detected again.
    done: set[ObjectRef] = field(default_factory=set)
    #: Messages whose frames could not all be finished: the frame, and why.
    failures: dict[str, tuple[str, Exception]] = field(default_factory=dict)


#: Whether "snapshots skipped: no alert rules" was logged by this container: once is enough
#: (every snapshot would say the same), and an edge fleet uploads one per clip.
_told_no_rules = False


#: Frames per InvokeEndpoint once the endpoint has refused a batch as too large (HTTP 413,
#: its MAX_BATCH); None until then. Learned per container, so later batches split at once.
_request_limit: int | None = None


def _detect(settings: Settings, refs: list[ObjectRef]) -> list[Detection]:
    """Detections for ``refs`` in order, in as few requests as the endpoint accepts."""
    global _request_limit
    limit = _request_limit or len(refs)
    if len(refs) > limit:
        return [d for start in range(0, len(refs), limit) for d in _detect(settings, refs[start:start + limit])]
    try:
        # Down to PERSON_TRACK_CONFIDENCE in the same call: the boxes under PERSON_MIN_CONFIDENCE
        # are kept apart (Detection.low_boxes), for the tracker's second pass only.
        answer, _ = aws.invoke_endpoint(settings.endpoint_name,
                                        build_request([r.uri for r in refs], settings.person_track_confidence,
                                                      settings.person_min_area))
    except Exception as exc:
        status = aws.model_error_status(exc)
        if status == 413 and len(refs) > 1:  # over the endpoint's batch limit: halve until it fits
            half = (len(refs) + 1) // 2
            _request_limit = min(_request_limit or half, half)
            logger.warning("endpoint refused a batch as too large; splitting", extra={"frames": len(refs)})
            return _detect(settings, refs[:half]) + _detect(settings, refs[half:])
        if status is not None and 400 <= status < 500 and len(refs) == 1:  # this frame itself is refused
            message = exc.response.get("OriginalMessage") or str(exc)  # type: ignore[attr-defined]
            if status == 404:  # the endpoint reads the frame: it finds it gone
                raise BadInputError(refs[0].uri, f"{MISSING_FRAME} ({message})") from exc
            if status == 403:
                raise S3AccessError(refs[0].uri, "the person detector cannot read the frame (403): the endpoint's "
                                                 "SageMaker execution role lacks s3:GetObject on the frames bucket "
                                                 "(and s3:ListBucket, or a deleted frame reads as 403), or with "
                                                 "kms=true kms:Decrypt on the stack key. Retried; fix the grant "
                                                 f"and redrive the DLQ ({message})") from exc
            raise BadInputError(refs[0].uri, f"the person detector refused the frame ({message})") from exc
        raise
    return parse_response(answer, len(refs), settings.person_min_confidence)


def _skip_snapshots(settings: Settings, refs_by_msg: dict[str, list[ObjectRef]], batch: Batch) -> None:
    """Without any alert rule a snapshot has no use (its clip is the record): drop it from the
    batch before the endpoint call, so it costs one log line per container and nothing else."""
    global _told_no_rules
    snapshots = [r for rs in refs_by_msg.values() for r in rs if is_snapshot(r.bucket, r.key, settings.raw_bucket)]
    if not snapshots or alerting.rules_configured():
        return
    for msg_id, rs in refs_by_msg.items():
        refs_by_msg[msg_id] = [r for r in rs if r not in snapshots]
    batch.skipped += snapshots
    if not _told_no_rules:
        _told_no_rules = True
        logger.info("edge snapshots acknowledged without detection: no alert rule is configured (ALERT_RULES)",
                    extra={"snapshot": snapshots[0].uri})


#: Concurrent look-ups while identifying a batch: snapshots' idempotency records, and the
#: HeadObject of a frame recorded already (a replay) or of one the endpoint sent no metadata for.
_IDENTIFY_THREADS = 8


def _read_meta(ref: ObjectRef) -> FrameMeta:
    """A frame's metadata from S3 itself (HeadObject)."""
    try:
        metadata = aws.head_object(ref.bucket, ref.key).get("Metadata", {})
    except Exception as exc:
        if aws.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise BadInputError(ref.uri, MISSING_FRAME) from exc
        # The role may list the frames bucket, so a deleted frame is a 404: a 403 is access.
        if aws.error_code(exc) in ("403", "AccessDenied", "Forbidden"):
            raise S3AccessError(ref.uri, "the frame exists but cannot be read (403): the function's role lacks "
                                         "s3:GetObject on it, or with kms=true kms:Decrypt on the stack key. "
                                         "Retried; fix the grant and redrive the DLQ") from exc
        raise
    return FrameMeta.parse(metadata, ref.uri)


def _snapshot_work(ref: ObjectRef) -> tuple[dict[str, Any], str]:
    return {"bucket": ref.bucket, "key": ref.key, "etag": ref.etag, "size": ref.size}, OBJECT_KEY


def _each(refs: list[ObjectRef], fn: Any) -> dict[ObjectRef, tuple[Any, Exception | None]]:
    """``fn(ref)`` for each ref, a few at a time: (result, None) or (None, the error)."""
    def one(ref: ObjectRef) -> tuple[Any, Exception | None]:
        try:
            return fn(ref), None
        except Exception as exc:
            return None, exc

    if not refs:
        return {}
    with ThreadPoolExecutor(max_workers=min(_IDENTIFY_THREADS, len(refs))) as pool:
        return dict(zip(refs, pool.map(one, refs), strict=True))


def _identify(settings: Settings, refs_by_msg: dict[str, list[ObjectRef]], batch: Batch) -> None:
    """What is done already, before the endpoint call. A snapshot: its idempotency record. A
    frame: whether its boxes are recorded from these very bytes, asked for the whole batch in
    one BatchGetItem by the frames' keys (which name video and index); only a frame found
    recorded (a replay, identical frames rewritten) is read for its metadata to compare. The
    other frames' metadata comes back from the endpoint with their detections (``prepare``),
    not from a HeadObject per frame. A frame that cannot be identified fails its message."""
    refs = list(dict.fromkeys(r for rs in refs_by_msg.values() for r in rs))
    snapshots = [r for r in refs if is_snapshot(r.bucket, r.key, settings.raw_bucket)]
    results = _each(snapshots, lambda r: done(finish_snapshot_work, _snapshot_work(r)[0], key=OBJECT_KEY))
    for ref, (is_done, exc) in results.items():
        if exc is None:
            batch.work[ref] = _snapshot_work(ref)
            if is_done:
                batch.done.add(ref)
    frame_keys = {r: keys.parse_frame_key(r.key) for r in refs if r not in snapshots}
    try:
        stored = tracking.recorded(settings, [k for k in frame_keys.values() if k])
    except Exception as exc:  # the table is failing: every message with a frame is retried
        stored = {}
        results |= {r: (None, exc) for r in frame_keys}
    replays = [r for r, k in frame_keys.items() if k in stored and r not in results]
    for ref, (meta, exc) in _each(replays, _read_meta).items():
        results[ref] = (meta, exc)
        if exc is None:
            batch.metas[ref] = meta
            if stored[frame_keys[ref]] == meta:
                batch.done.add(ref)
    for msg_id, rs in refs_by_msg.items():
        for r in rs:
            if r in results and results[r][1] is not None:
                batch.errors.setdefault(msg_id, results[r][1])


def _settle_metas(settings: Settings, detections: dict[ObjectRef, Detection],
                  batch: Batch) -> dict[ObjectRef, Exception]:
    """Each detected frame's metadata, from what the endpoint read with it; read from S3 only
    where the endpoint sent none (one deployed before it did). Returns the frames that failed."""
    failed: dict[ObjectRef, Exception] = {}
    unread: list[ObjectRef] = []
    for ref, detection in detections.items():
        if ref in batch.metas or is_snapshot(ref.bucket, ref.key, settings.raw_bucket):
            continue
        if detection.metadata is None:
            unread.append(ref)
            continue
        try:
            batch.metas[ref] = FrameMeta.parse(detection.metadata, ref.uri)
        except BadInputError as exc:
            failed[ref] = exc
    for ref, (meta, exc) in _each(unread, _read_meta).items():
        if exc is None:
            batch.metas[ref] = meta
        else:
            failed[ref] = exc
    return failed


def prepare(event: dict[str, Any], settings: Settings) -> Batch:
    """The batch's messages parsed, the work done already left out, and the rest detected in
    as few endpoint calls as it accepts (frame by frame only when one frame spoils a batch)."""
    batch = Batch()
    refs_by_msg: dict[str, list[ObjectRef]] = {}
    suffix = contract.load()["frame_suffix"]
    for raw in event.get("Records", []):
        msg_id = raw.get("messageId", "")
        try:
            refs_by_msg[msg_id] = [r for r in parse_s3_message(raw.get("body", "")) if r.key.endswith(suffix)]
        except BadInputError as exc:
            batch.errors[msg_id] = exc
    _skip_snapshots(settings, refs_by_msg, batch)
    batch.refs = refs_by_msg
    _identify(settings, refs_by_msg, batch)
    if batch.done:
        logger.info("frames already processed (a replayed event, or identical frames rewritten): not detected "
                    "again", extra={"frames": len(batch.done), "first": next(iter(batch.done)).uri})
    todo = {m: [r for r in rs if r not in batch.done] for m, rs in refs_by_msg.items() if m not in batch.errors}
    refs = list(dict.fromkeys(r for rs in todo.values() for r in rs))
    if not refs:
        batch.frames = {m: [] for m in todo}
        return batch
    try:
        detections = dict(zip(refs, _detect(settings, refs), strict=True))
    except Exception as exc:
        if aws.error_code(exc) != "ModelError" or len(refs) == 1:
            for msg_id, rs in todo.items():  # the endpoint itself is failing: retry the batch
                if rs:
                    batch.errors[msg_id] = exc
            return batch
        # One bad frame must not fail its neighbours: ask about each frame alone.
        logger.warning("batch request refused; retrying frame by frame", extra={"error": str(exc)})
        detections = {}
        for msg_id, rs in todo.items():
            try:
                for r in rs:
                    detections[r] = _detect(settings, [r])[0]
            except Exception as one_exc:
                batch.errors[msg_id] = one_exc
    failed = _settle_metas(settings, detections, batch)
    for msg_id, rs in todo.items():
        bad = next((failed[r] for r in rs if r in failed), None)
        if bad is not None:
            batch.errors.setdefault(msg_id, bad)
        if msg_id not in batch.errors:
            batch.frames[msg_id] = [(r, detections[r]) for r in rs]
    return batch


def finish_snapshot(settings: Settings, ref: ObjectRef, detection: Detection) -> dict[str, Any]:
    """An edge snapshot (alert-only frame): copy and alert when it shows people, no row.

    The copy goes under the people bucket's snapshot prefix (the only one that notifies
    analyze_faces: frames of videos reach it per track, from track_people) and is marked
    alert-only, so analyze_faces alerts on its faces without writing rows; the clip the
    snapshot belongs to is the record, and counting the snapshot too would double-count.
    """
    try:
        head = aws.head_object(ref.bucket, ref.key)
    except Exception as exc:
        if aws.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise BadInputError(ref.uri, "the snapshot no longer exists (deleted before processing)") from exc
        # This role may read the snapshot prefix but not list the raw bucket (that would show
        # every video's key), so in AWS a deleted snapshot answers 403, not 404.
        if aws.error_code(exc) in ("403", "AccessDenied", "Forbidden"):
            raise BadInputError(ref.uri, "the snapshot cannot be read: deleted before processing, or "
                                         "outside the snapshot prefix this function may read") from exc
        raise
    meta = snapshot_meta(ref.bucket, ref.key, str(head.get("ETag", ref.etag)).strip('"'), head.get("Metadata", {}))
    if detection.person_count:
        key = keys.snapshot_copy_key(meta.video_id)
        s3_meta = meta.to_s3() | {"person-count": str(detection.person_count),
                                  "max-confidence": str(detection.max_confidence), "detector": detection.model}
        aws.copy_object(ref.bucket, ref.key, settings.people_bucket, metadata=s3_meta, dst_key=key)
        alerting.on_person_frame(meta, detection, settings.people_bucket, key)
    logger.info("edge snapshot: alert-only frame, no people row",
                extra={"snapshot": ref.uri, "camera": meta.camera_id, "person_count": detection.person_count,
                       "clip_key": meta.clip_key})
    return {"record_id": None, "person_count": detection.person_count, "alert_only": True}


@work_name("functions.detect_people.finish_snapshot_work")  # its records' name from before the move
def finish_snapshot_work(obj: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's work, once per object version (runtime.once)."""
    ref = ObjectRef(obj["bucket"], obj["key"], obj["size"], obj["etag"])
    detection = Detection(model=obj["model"], boxes=tuple(Box.from_doc(b) for b in obj["boxes"]))
    return finish_snapshot(Settings.from_env(), ref, detection)


def _copy_frame(settings: Settings, ref: ObjectRef, meta: FrameMeta, detection: Detection) -> None:
    """A frame with people, copied to the people bucket (its report, and the alert's link)."""
    s3_meta = meta.to_s3() | {"person-count": str(detection.person_count),
                              "max-confidence": str(detection.max_confidence), "detector": detection.model}
    aws.copy_object(ref.bucket, ref.key, settings.people_bucket, metadata=s3_meta)


#: Concurrent CopyObject calls while finishing a batch: each is a round trip of its own.
_COPY_THREADS = 8


def finish(settings: Settings, batch: Batch) -> None:
    """Every detected frame of the batch, once even if two messages name it (S3 delivers at
    least once): the frames with people copied (concurrently) and alerted on (in frame
    order, each after its copy), then all recorded for track_people together
    (tracking.record_detections). A frame that fails fails the messages naming it
    (batch.failures), and the frames that did not fail are recorded all the same, so the
    retry finds them done."""
    messages: dict[ObjectRef, list[str]] = {}
    detections: dict[ObjectRef, Detection] = {}
    for msg_id, frames in batch.frames.items():
        for ref, detection in frames:
            if ref in batch.metas:  # snapshots: their own work in the record handler
                messages.setdefault(ref, []).append(msg_id)
                detections[ref] = detection

    def fail(ref: ObjectRef, exc: Exception) -> None:
        for msg_id in messages[ref]:
            batch.failures.setdefault(msg_id, (ref.uri, exc))

    def copy(ref: ObjectRef) -> Exception | None:
        try:
            _copy_frame(settings, ref, batch.metas[ref], detections[ref])
        except Exception as exc:
            return exc
        return None

    with_people = [r for r, d in detections.items() if d.person_count]
    copy_errors: dict[ObjectRef, Exception | None] = {}
    if with_people:
        with ThreadPoolExecutor(max_workers=min(_COPY_THREADS, len(with_people))) as pool:
            copy_errors = dict(zip(with_people, pool.map(copy, with_people), strict=True))
    finished: list[ObjectRef] = []
    for ref, detection in detections.items():
        try:
            if detection.person_count:
                error = copy_errors[ref]
                if error is not None:
                    raise error
                # Before the record: an alert is never lost to a record written first.
                alerting.on_person_frame(batch.metas[ref], detection, settings.people_bucket, ref.key)
        except Exception as exc:
            fail(ref, exc)
            continue
        finished.append(ref)
    try:
        tracking.record_detections(settings, [(batch.metas[r], detections[r]) for r in finished])
    except Exception as exc:
        for ref in finished:
            fail(ref, exc)


def run(event: dict[str, Any], settings: Settings) -> Batch:
    """The whole batch's work but the snapshots' (``snapshot_work``): detection, copies,
    alerts and tracking records, each message's outcome left in the returned Batch."""
    batch = prepare(event, settings)
    finish(settings, batch)
    return batch


def snapshot_work(batch: Batch, message_id: str) -> list[tuple[ObjectRef, dict[str, Any], str]]:
    """The snapshots a message named, each as (ref, idempotency payload, its key) for
    ``runtime.once(finish_snapshot_work, ...)``; a message's frames were finished by ``finish``."""
    out = []
    for ref, detection in batch.frames.get(message_id, []):
        if ref in batch.work:
            work, key = batch.work[ref]
            out.append((ref, work | {"model": detection.model, "boxes": [b.as_doc() for b in detection.boxes]}, key))
    return out


def give_up_on_last_receive(settings: Settings, receive_count: int, refs: list[ObjectRef]) -> None:
    """On the message's last receive before its DLQ, its frames are given up for tracking,
    so their video is tracked from the frames that arrived instead of waiting forever."""
    if receive_count < int(contract.stage(STAGE)["max_receive_count"]):
        return
    frames = [r.key for r in refs if not is_snapshot(r.bucket, r.key, settings.raw_bucket)]
    try:
        tracking.give_up(settings, frames)
    except Exception:  # the DLQ still holds the message; never hide the original error
        logger.exception("could not record the frames as given up", extra={"frames": frames})


def give_up_now(settings: Settings, refs: list[ObjectRef]) -> None:
    """A bad frame (deleted, refused by the detector, without metadata) is permanent: its frames
    are given up at once, so its video is tracked without them and no retry waits for it."""
    frames = [r.key for r in refs if not is_snapshot(r.bucket, r.key, settings.raw_bucket)]
    if frames:
        tracking.give_up(settings, frames)
