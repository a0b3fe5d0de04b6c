"""The faces stage (analyze_faces' and alert_faces' service): faces, once per visit.
track_people sends one message per group of tracks
(people followed through a video) with the few frames it chose for each; this stage runs
Rekognition DetectFaces on those frames (Rekognition reads them from S3), keeps each face
that belongs to one of the group's people (its centre in their box), searches it in the
collection of known faces (if configured), alerts on what the rules watch for, and writes
one ``faces`` row per face and one ``tracks`` row per track through Firehose.

The edge's alert snapshots arrive frame by frame on a queue of their own, from the people
bucket's notification (the alert fast lane): functions/alert_faces.py, which runs
:func:`snapshot_records` (:func:`analyze_frame`) here, so a snapshot's face alert never waits behind groups. An
alert-only frame (an edge snapshot that detect_people copied here, vidsift.core.snapshots) gets
the same analysis and face alerts but writes no row: its clip is processed in full later and is the record. With no
face rule configured it is acknowledged untouched.

A frame's work is identified by the frame and its content hash (vidsift.stages.runtime.FRAME_KEY,
from the metadata detect_people's copy keeps), not by the copy's ETag, which with SSE-KMS
is new on every copy: a frame copied here again is not analysed (nor alerted on) again.
An alert-only copy of a snapshot has no hash and stays keyed on its object version.

The handlers (functions/analyze_faces.py, functions/alert_faces.py) parse their messages
and report failures; the work and its idempotency keys are here."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vidsift import aws
from vidsift.core import face_frames
from vidsift.core.errors import BadInputError, S3AccessError
from vidsift.core.events import ObjectRef, parse_s3_message
from vidsift.core.messages import FaceWork
from vidsift.core.records import FrameMeta, build_face_record, build_track_record, keep_face, utc_now
from vidsift.logs import get_logger
from vidsift.settings import Settings
from vidsift.stages import alerting, known_faces, rate, visitors
from vidsift.stages.runtime import failures_recorded, frame_work, once, record_bad_input, work_name

STAGE = "analyze_faces"
#: A group of tracks' work is identified by its video and its face-work document.
TRACKS_KEY = "[video_id, work_key]"
#: The stage's one logger (the handlers log through it too: one Powertools Logger per service).
logger = get_logger(STAGE)
#: Rekognition errors that say the image itself is unusable: retrying cannot help.
_BAD_IMAGE = {"InvalidImageFormatException", "ImageTooLargeException"}
#: Rekognition's answer to any failure to read the object from S3. The frame was just found
#: (HeadObject above), so this is access, not input: retried, and the causes named.
_S3_ACCESS = "InvalidS3ObjectException"
_S3_ACCESS_CAUSES = ("Rekognition could not read the frame from S3 ({code}: {message}); likely causes: the "
                     "function's role lacks s3:GetObject on it (Rekognition reads with the caller's "
                     "permissions), the KMS key denies the role kms:Decrypt (kms=true), or the bucket is in "
                     "another region than Rekognition. Retried; fix the grant and redrive the DLQ")
#: The local analyser names itself in this response header; Amazon Rekognition sends none.
ANALYZER_HEADER = "x-vidsift-analyzer"


def _metadata(ref: ObjectRef) -> dict[str, str]:
    """The frame's S3 user metadata (HeadObject); a frame deleted since its event is a bad input."""
    try:
        return aws.head_object(ref.bucket, ref.key).get("Metadata", {})
    except Exception as exc:
        if aws.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise BadInputError(ref.uri, "the frame no longer exists (deleted before processing)") from exc
        raise


def _detect(ref: ObjectRef) -> dict[str, Any]:
    rate.rekognition_limiter().acquire()  # this instance's share of rekognitionTps
    try:
        return aws.detect_faces(ref.bucket, ref.key)
    except Exception as exc:
        code = aws.error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") if code else ""  # type: ignore[attr-defined]
        if code in _BAD_IMAGE:
            raise BadInputError(ref.uri, f"Rekognition refused the image ({code}: {message})") from exc
        if code == _S3_ACCESS:
            raise S3AccessError(ref.uri, _S3_ACCESS_CAUSES.format(code=code, message=message)) from exc
        raise


#: DetectFaces calls of one group at once: each waits a few hundred milliseconds on
#: Rekognition and a group's frames are independent. Few, for Rekognition's per-account rate
#: (a throttled call is retried with backoff).
_DETECT_THREADS = 4


def _detect_unless_gone(ref: ObjectRef) -> dict[str, Any] | BadInputError:
    """DetectFaces on a chosen frame; the bad input instead when the frame was deleted since it
    was chosen, or Rekognition refuses it for good (too large, not an image): the visit's other
    frames are still analysed and its row still written, rather than the whole group given up."""
    try:
        return _detect(ref)
    except BadInputError as exc:
        return exc
    except S3AccessError:
        if not _gone(ref):
            raise
        return BadInputError(ref.uri, "the frame no longer exists (deleted before face analysis); its visit is "
                                      "analysed without it")


def _gone(ref: ObjectRef) -> bool:
    """Whether the frame was deleted (HeadObject 404): Rekognition says the same for that and
    for an access failure, which must be retried instead."""
    try:
        aws.head_object(ref.bucket, ref.key)
    except Exception as exc:
        return aws.error_code(exc) in ("404", "NoSuchKey", "NotFound")
    return False


def _analyzer(resp: dict[str, Any]) -> str:
    return str(resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(ANALYZER_HEADER, "amazon-rekognition"))


@work_name("functions.analyze_faces.analyze_frame")  # its records' name from before the move
def analyze_frame(obj: dict[str, Any]) -> dict[str, Any]:
    """An edge snapshot's alert-only copy: face alerts, no rows."""
    settings = Settings.from_env()
    ref = ObjectRef(obj["bucket"], obj["key"], obj["size"], obj["etag"])
    metadata = obj["metadata"] if "metadata" in obj else _metadata(ref)
    meta = FrameMeta.parse(metadata, ref.uri)
    if meta.alert_only and not alerting.face_rules_configured():
        logger.info("alert-only frame without face rules: not analysed", extra={"frame": ref.uri})
        return {"faces": 0, "dropped": 0, "known": 0, "alert_only": True}
    resp = _detect(ref)
    analyzer = _analyzer(resp)
    details = resp.get("FaceDetails", [])
    kept = [d for d in details if keep_face(d, settings.face_min_confidence, settings.face_min_size)]
    found = known_faces.match_faces(ref.bucket, ref.key, kept)
    now = utc_now()
    records = [build_face_record(meta, i, d, analyzer, now, m)
               for i, (d, m) in enumerate(zip(kept, found.matches, strict=True))]
    # Alerts before the rows: if publishing fails, SQS retries the frame and no row is duplicated.
    alerting.on_faces(meta, ref.bucket, ref.key, records, searched=found.searched)
    if records and not meta.alert_only:  # an alert-only frame's clip brings the rows
        aws.put_records(settings.faces_stream, records)
    result = {"faces": len(records), "dropped": len(details) - len(kept),
              "known": sum(m is not None for m in found.matches), "alert_only": meta.alert_only}
    logger.info("frame analysed", extra={"frame": ref.uri, **result})
    return result


@work_name("functions.analyze_faces.analyze_tracks")  # its records' name from before the move
def analyze_tracks(obj: dict[str, Any]) -> dict[str, Any]:
    """One group of tracks (vidsift.stages.tracking): DetectFaces on each chosen frame once,
    each face kept for the track whose person holds it, then the faces' and tracks' rows."""
    settings = Settings.from_env()
    try:
        doc = aws.get_json(settings.people_bucket, obj["work_key"])
    except Exception as exc:
        if aws.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise BadInputError(f"s3://{settings.people_bucket}/{obj['work_key']}",
                                "the tracks' face work no longer exists") from exc
        raise
    work = FaceWork.from_json(doc)  # the frames' metadata parsed here, once
    group = {t["track_id"] for t in work.tracks}
    faces: list[dict[str, Any]] = []
    now = utc_now()
    dropped = 0
    refs = [ObjectRef(settings.people_bucket, frame.key, 0, "") for frame in work.frames]
    # The calls at once, their answers used in frame order (the first failure in that order raises).
    with ThreadPoolExecutor(max_workers=max(1, min(_DETECT_THREADS, len(refs)))) as pool:
        answers = list(pool.map(_detect_unless_gone, refs))
    for frame, ref, resp in zip(work.frames, refs, answers, strict=True):
        if isinstance(resp, BadInputError):
            # One frame deleted since it was chosen, or refused by Rekognition: said where errors
            # are read, the visit's other frames still analysed and its row still written.
            record_bad_input(logger, STAGE, resp, subject=ref.uri, message_id=None)
            continue
        details = resp.get("FaceDetails", [])
        kept, owners = [], []
        for d in details:
            who = face_frames.owner(d.get("BoundingBox") or {}, frame.people)
            if who in group and keep_face(d, settings.face_min_confidence, settings.face_min_size):
                kept.append(d)
                owners.append(who)
            else:
                dropped += 1
        found = known_faces.match_faces(ref.bucket, ref.key, kept)
        records = [build_face_record(frame.meta, i, d, _analyzer(resp), now, m, track_id=who)
                   for i, (d, m, who) in enumerate(zip(kept, found.matches, owners, strict=True))]
        alerting.on_faces(frame.meta, ref.bucket, ref.key, records, searched=found.searched)
        faces += records
    # Opt-in (VISITORS=true): each visit's visitor id, set on its faces' rows too.
    visits = visitors.assign(settings.people_bucket, settings.analytics_bucket, work, faces, now=now)
    tracks = [build_track_record(t, [f for f in faces if f["track_id"] == t["track_id"]], now,
                                 visits.get(t["track_id"])) for t in work.tracks]
    # Faces first: a track row is the visit's summary, written once its faces are.
    aws.put_records(settings.faces_stream, faces)
    aws.put_records(settings.need("tracks_stream"), tracks)
    result = {"video_id": work.video_id, "tracks": len(tracks), "detect_faces_calls": len(work.frames),
              "faces": len(faces), "dropped": dropped, "known": sum(1 for f in faces if f["matched_name"])}
    logger.info("tracks analysed", extra=result)
    return result


def tracks_work(video_id: str, work_key: str) -> dict[str, Any]:
    """The idempotency payload of one group's work (``once(analyze_tracks, ..., key=TRACKS_KEY)``)."""
    return {"video_id": video_id, "work_key": work_key}


def snapshot_records(record: SQSRecord, lambda_context: Any, stage: str, log: Logger) -> None:
    """The people bucket's notification of an edge snapshot's alert-only copy: its face
    alerts (analyze_frame), once per copy. What alert_faces' handler calls (and analyze_faces'
    for a snapshot queued before alert_faces had its queue); failures are said under
    ``stage``'s errors."""
    try:
        refs = parse_s3_message(record.body)
    except BadInputError as exc:
        record_bad_input(log, stage, exc, subject=f"sqs:{record.message_id}", message_id=record.message_id)
        raise
    for ref in refs:
        with failures_recorded(log, stage, record, ref.uri):
            metadata = _metadata(ref)  # its content hash identifies the work
            obj, key = frame_work({"bucket": ref.bucket, "key": ref.key, "etag": ref.etag, "size": ref.size,
                                   "metadata": metadata}, metadata)
            once(analyze_frame, obj, lambda_context, key=key)
