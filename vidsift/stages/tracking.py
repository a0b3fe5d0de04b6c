"""The tracking stage: what detect_people records for it, and track_people's two steps.

detect_people records each frame's boxes and settles it in the video's progress
(vidsift.core.completion). Once the video is detected, track_people tracks each segment
alone (``track_segment_work``: its result kept in the frames bucket), then, once all are,
stitches them (``track_video_work``): it writes the ``people`` rows (each box with its
track id), chooses each track's face frames (vidsift.core.face_frames), writes the rows of
tracks without any frame fit for face analysis, and hands analyze_faces the rest, one
message per group of tracks that share frames. Everything written is keyed
deterministically, so a replayed message rewrites the same objects and rows.

The low boxes (under PERSON_MIN_CONFIDENCE, down to PERSON_TRACK_CONFIDENCE) go to the
tracker with every frame, and ``TrackParams.track_confidence`` (PERSON_MIN_CONFIDENCE, from
the settings) lets them only continue someone already tracked. What each output reads:

- a track (its row: first and last seen, dwell, path, lines and zones): every box it holds,
  low ones included: a half-hidden person is still on their visit;
- the ``people`` rows: the confident boxes only, as before (count, best score, boxes with
  their track ids): a low box is never a person in the frame;
- face work: each track's face frames and thumbnail are chosen among its confident boxes
  (only frames with a confident person are copied to the people bucket analyze_faces reads,
  and an unsure box is a poor face); the boxes a face may belong to are the confident ones
  and the low ones a track holds (a face on a half-hidden person is theirs), never a low box
  no track took.
"""

from __future__ import annotations

from typing import Any

from vidsift import aws
from vidsift.core import completion, face_frames, keys
from vidsift.core.confirm import confirmed
from vidsift.core.detection import Box, Detection
from vidsift.core.messages import DetectedFrame, FaceFrame, FaceWork, SegmentTracks
from vidsift.core.records import FrameMeta, build_people_record, build_track_draft, build_track_record, utc_now
from vidsift.core.tracking import FramePeople, Point, Track, stitch, track_segment
from vidsift.logs import get_logger
from vidsift.settings import Settings
from vidsift.stages import barrier, counting
from vidsift.storage.progress import DynamoProgressStore

logger = get_logger("tracking")


# --- what detect_people tells the barrier ----------------------------------------------


def record_detections(settings: Settings, detected: list[tuple[FrameMeta, Detection]]) -> None:
    """An invocation's frames: their boxes, then one ADD per segment to its progress; the
    update that completes a segment sends it on (vidsift.stages.barrier)."""
    barrier.record_frames(settings.need("tracking_table"), settings.need("track_queue_url"),
                          [(m.video_id, m.segment, m.frame_index, DetectedFrame.of(m, d).to_json())
                           for m, d in detected])


def recorded(settings: Settings, frames: list[tuple[str, int]]) -> dict[tuple[str, int], FrameMeta]:
    """The frames among ``frames`` (video, frame index) whose work is done, with the metadata
    their boxes were recorded from (vidsift.stages.barrier.recorded, which also sends on a
    complete segment its video was not tracked with). A frame whose recorded metadata does
    not parse is left out: it is detected again, as one recorded from other bytes would be."""
    out: dict[tuple[str, int], FrameMeta] = {}
    for frame, metadata in barrier.recorded(settings.need("tracking_table"), settings.need("track_queue_url"),
                                            frames).items():
        try:
            out[frame] = FrameMeta.from_s3(metadata)
        except ValueError:
            continue
    return out


def give_up(settings: Settings, frame_keys: list[str]) -> None:
    """Frames on their way to the DLQ: their videos are tracked without them."""
    barrier.give_up(settings.need("tracking_table"), settings.need("track_queue_url"), frame_keys)


# --- track_people, step 1: one segment -------------------------------------------------


def track_segment_work(obj: dict[str, Any]) -> dict[str, Any]:
    """One segment (again, under a new generation, once it recovered frames given up)."""
    settings = Settings.from_env()
    table = settings.need("tracking_table")
    video, segment = str(obj["video_id"]), int(obj["segment"])
    part = completion.segment_part(video, segment)
    store = DynamoProgressStore(table)
    item = store.item(part)
    span = completion.span(item)
    docs = [DetectedFrame.from_json(d) for d in store.frames(part)] if span else []
    failed = sorted(completion.gaps(item))
    frames = [FramePeople(d.meta.frame_index, d.meta.frame_time_s, d.tracked_boxes) for d in docs]
    tracks = track_segment(frames, settings.track, prefix=f"s{segment}-")
    aws.put_json(settings.frames_bucket, keys.tracking_key(video, segment), SegmentTracks(
        video_id=video, segment=segment, start_s=span[0] if span else None, failed=failed, frames=docs,
        tracks={t.key: [[p.frame_index, p.box_index] for p in t.points] for t in tracks}).to_json())
    _segment_tracked(settings, table, video, segment, completion.recovered(item))
    return {"video_id": video, "segment": segment, "frames": len(docs), "tracks": len(tracks),
            "frames_given_up": len(failed)}


def _segment_tracked(settings: Settings, table: str, video: str, segment: int, recovered: set[int]) -> None:
    """ADD the segment to its video's tracked set (and the frames it recovered: a video
    tracked before is reopened); the update that completes the set sends the video on."""
    got = DynamoProgressStore(table).mark(video, set_={"updated_at": barrier.now()},
                                          default={"open": completion.OPEN} if recovered else {},
                                          add={"tracked": {segment, completion.SENTINEL},
                                               "recovered": recovered | {completion.SENTINEL}},
                                          remove=["state"] if recovered else ())
    if not all(k in got for k in ("segments", "tracked", "recovered")):
        got = DynamoProgressStore(table).item(video)  # an unchanged attribute left out of the answer
    if completion.tracked(got):
        aws.send_messages(settings.need("track_queue_url"),
                          [completion.VideoMessage(video, completion.generation(got)).to_json()])


# --- track_people, step 2: the video ---------------------------------------------------


def _segment_tracks(doc: SegmentTracks) -> list[Track]:
    frames = {d.meta.frame_index: d for d in doc.frames}
    out = []
    for key, points in doc.tracks.items():
        pts = []
        for frame_index, box_index in points:
            d = frames[frame_index]
            pts.append(Point(frame_index, d.meta.frame_time_s, box_index, d.tracked_boxes[box_index]))
        out.append(Track(key=key, points=pts))
    return out


def _confident(track: Track, confidence: float) -> Track:
    """The track's points of ``confidence`` or more (its boxes counted as a person): what its
    face frames and thumbnail are chosen among (the module's docstring says why)."""
    return Track(key=track.key, points=[p for p in track.points if p.box.confidence >= confidence],
                 track_id=track.track_id)


def track_video_work(obj: dict[str, Any]) -> dict[str, Any]:
    """A video's segments are all tracked: stitch their tracks, write the people rows with
    their track ids, and hand each group of tracks' chosen frames to analyze_faces (faces once
    per visit, not per frame)."""
    settings = Settings.from_env()
    table = settings.need("tracking_table")
    video = str(obj["video_id"])
    item = DynamoProgressStore(table).item(video)
    docs = [SegmentTracks.from_json(aws.get_json(settings.frames_bucket, keys.tracking_key(video, k)))
            for k in range(int(item["segments"]))]
    tracks = stitch([(float(d.start_s or 0.0), _segment_tracks(d)) for d in docs], settings.track)
    sampled = [f.meta.frame_index for doc in docs for f in doc.frames]  # a dropped track's boxes keep no id
    tracks = confirmed(tracks, min(sampled, default=0), max(sampled, default=0), settings.track)
    owner = {(p.frame_index, p.box_index): t.track_id for t in tracks for p in t.points}
    metas: dict[int, FrameMeta] = {}
    boxes_by_frame: dict[int, list[tuple[str | None, Box]]] = {}
    now = utc_now()
    rows = []
    for d in (f for doc in docs for f in doc.frames):
        i = d.meta.frame_index
        metas[i] = d.meta
        people = [(owner.get((i, n)), b) for n, b in enumerate(d.boxes)]  # the confident boxes: indices 0..
        rows.append(build_people_record(d.meta, d.detection, now, [tid for tid, _ in people]))
        low = [(owner.get((i, n)), b) for n, b in enumerate(d.low_boxes, start=len(d.boxes))]
        boxes_by_frame[i] = people + [(tid, b) for tid, b in low if tid is not None]
    aws.put_records(settings.people_stream, rows)
    failed = sorted({i for d in docs for i in d.failed})
    rule = settings.faces
    sure = {t.track_id or "": _confident(t, settings.track.track_confidence) for t in tracks}
    chosen = {tid: face_frames.choose(t, rule) for tid, t in sure.items()}
    drafts = {}
    for t in tracks:
        tid = t.track_id or ""
        gap = sum(1 for i in failed if t.first.frame_index < i < t.last.frame_index)
        best = face_frames.best_point(sure[tid] if sure[tid].points else t)
        drafts[tid] = build_track_draft(video, tid, [(p.frame_index, p.time_s, p.box.as_dict()) for p in t.points],
                                        metas, best.frame_index, len(chosen[tid]), gap)
    faceless = [build_track_record(drafts[tid], [], now) for tid, pts in chosen.items() if not pts]
    aws.put_records(settings.need("tracks_stream"), faceless)
    messages = []
    for group in face_frames.groups({tid: [p.frame_index for p in pts] for tid, pts in chosen.items() if pts}):
        frames_needed = sorted({p.frame_index for tid in group for p in chosen[tid]})
        work = FaceWork(video_id=video, tracks=[drafts[tid] for tid in group],
                        frames=[FaceFrame(i, keys.frame_key(video, i), metas[i], boxes_by_frame[i])
                                for i in frames_needed])
        key = keys.faces_work_key(video, group[0])
        aws.put_json(settings.people_bucket, key, work.to_json())
        messages.append(completion.FacesMessage(video, key).to_json())
    if messages:
        aws.send_messages(settings.need("faces_queue_url"), messages)
    # Lines and zones (vidsift.stages.counting): the tracks' paths against the camera's layout.
    counting.count_tracked_video(settings.analytics_bucket, video, drafts.values(), now)
    result = {"video_id": video, "tracks": len(tracks), "face_frames": sum(len(p) for p in chosen.values()),
              "face_groups": len(messages), "people_rows": len(rows), "frames_given_up": len(failed)}
    # The end state (the sweeper's index forgets the video): tracked, with the frames given up.
    DynamoProgressStore(table).mark(video, set_={"state": completion.TRACKED, "gap_frames": len(failed),
                                                 "generation": int(obj.get("generation", 0)),
                                                 "updated_at": barrier.now()},
                                    remove=["open", "reason"])
    logger.info("video tracked", extra=result)
    return result
