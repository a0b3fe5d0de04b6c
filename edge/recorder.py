"""Person-triggered clips from a frame source, encoded to H.264 MP4 and queued for upload.

Per frame: the motion check (always, cheap); the person detector only on moving frames and at
most ``detect_fps`` times a second; the clip rule (edge.clips) decides start and stop. Frames of
the last ``pre_roll_s`` are kept in memory so a clip shows the moments before the detection.
A finished clip is written next to the queue database (``<state_dir>/spool/<camera>``), renamed into
place only when complete, and handed to the queue with what the recorder saw (max people, max
confidence, detector, threshold) and the wall time of its first frame as ``recorded-at``.
On the first detection a JPEG snapshot can be queued at high priority, so an alert can go out
seconds after a person appears instead of after the clip ends.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from edge.clips import EPS, SPLIT, START, STOP, ClipRule, ClipSettings, HoursWindow
from edge.config import EdgeConfig
from edge.detector import Detection, PersonDetector
from edge.metadata import probe_video
from edge.motion import MotionDetector
from edge.queue import SNAPSHOT_PRIORITY, Clip, UploadQueue, random_key
from edge.source import TimedFrame
from vidsift.contract import load as load_contract
from vidsift.core.uploads import CLIP_KEY, GROUP_ID, PART, EdgeStats, VideoInfo, build_metadata

log = logging.getLogger(__name__)


class ClipWriter:
    """An H.264 MP4 being written with PyAV (libx264 ships in the av wheel).

    Timestamps are the frames' own (milliseconds from the first frame), so a camera that
    delivers frames unevenly still plays back at the right speed.
    """

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        import av

        self.final_path = path
        self.part_path = path.with_name(path.name + ".part")
        # yuv420p needs even dimensions.
        self.width, self.height = width - width % 2, height - height % 2
        self.container = av.open(str(self.part_path), mode="w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=Fraction(round(fps * 1000), 1000))
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.codec_context.time_base = Fraction(1, 1000)
        # A keyframe every ~2 s so the pipeline can seek and sample cheaply.
        self.stream.options = {"preset": "veryfast", "crf": "23", "g": str(max(1, round(fps * 2)))}
        self._t0: float | None = None
        self._last_pts = -1
        self.frames = 0

    def add(self, frame: TimedFrame) -> None:
        """Encode one frame into the clip (resized if the camera came back at another resolution)."""
        import av

        image = frame.image
        if image.shape[1] != self.width or image.shape[0] != self.height:
            if image.shape[1] - self.width <= 1 and image.shape[0] - self.height <= 1:
                image = image[: self.height, : self.width]
            else:  # the camera came back at another resolution
                image = cv2.resize(image, (self.width, self.height))
        self._t0 = frame.t if self._t0 is None else self._t0
        pts = max(self._last_pts + 1, round((frame.t - self._t0) * 1000))
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        vf.pts, vf.time_base = pts, Fraction(1, 1000)
        self._last_pts = pts
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        """Finish the clip and give it its final name: only complete files ever carry one, so the
        uploader never picks up half a clip."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        os.replace(self.part_path, self.final_path)  # complete files only ever carry the final name
        return self.final_path

    def discard(self) -> None:
        """Drop an unfinished clip (nothing worth uploading), leaving no partial file behind."""
        try:
            self.container.close()
        finally:
            self.part_path.unlink(missing_ok=True)


@dataclass
class RecordedClip:
    """What the recorder produced: for logs, tests and the CLI's summary."""

    key: str
    path: Path
    first_t: float
    last_t: float
    recorded_at: datetime
    frames: int
    max_people: int
    max_confidence: float
    stop_reason: str
    snapshot_key: str | None = None
    queued: Clip | None = None
    group_id: str = ""
    part: int = 1


@dataclass
class _Active:
    writer: ClipWriter
    key: str
    first_t: float
    last_t: float
    recorded_at: datetime
    max_people: int = 0
    max_confidence: float = 0.0
    snapshot_key: str | None = None
    detections: list[tuple[float, int]] = field(default_factory=list)
    group_id: str = ""
    part: int = 1


class Recorder:
    """Turns a stream of frames into person-triggered clips: motion gate, person detection at most
    ``detect_fps``, the clip rule, a pre-roll buffer and the encoder, each finished clip queued
    for upload with its metadata (and a snapshot for alerts), so only footage with people leaves
    the device."""

    def __init__(
        self,
        cfg: EdgeConfig,
        queue: UploadQueue | None,
        detector: PersonDetector,
        *,
        camera_id: str,
        device_id: str,
        fps: float = 10.0,
        stop: threading.Event | None = None,
        on_clip: Callable[[RecordedClip], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.queue = queue
        self.detector = detector
        self.camera_id, self.device_id = camera_id, device_id
        self.fps = fps
        self.stop = stop or threading.Event()
        self.on_clip = on_clip
        self.rule = ClipRule(ClipSettings(cfg.pre_roll_s, cfg.post_roll_s, cfg.max_clip_s, cfg.min_gap_s))
        self.motion = MotionDetector(cfg.motion_width, cfg.motion_pixel_delta, cfg.motion_fraction)
        self.hours = HoursWindow.parse(cfg.hours) if cfg.hours else None
        # One spool per camera, so two recorders sharing a state dir never touch each other's files.
        self.spool = Path(cfg.state_dir) / "spool" / re.sub(r"[^A-Za-z0-9._-]", "_", camera_id)
        self.spool.mkdir(parents=True, exist_ok=True)
        self.buffer: deque[TimedFrame] = deque()
        self.active: _Active | None = None
        self.clips: list[RecordedClip] = []
        self._last_detect_t: float | None = None
        self.frames_seen = self.frames_moving = self.detector_runs = 0
        for stale in self.spool.glob("*.part"):
            # An MP4 cut off by a crash has no index (moov) and cannot be played: not a clip.
            log.warning("removing %s, a clip interrupted by a crash or power loss", stale.name)
            stale.unlink(missing_ok=True)

    # -- the per-frame loop ---------------------------------------------------------------
    def run(self, frames) -> list[RecordedClip]:  # frames: Iterable[TimedFrame]
        """Record from ``frames`` until they end or ``stop`` is set, closing the clip in progress either
        way so nothing recorded is lost; returns the clips made."""
        try:
            for frame in frames:
                self.process(frame)
                if self.stop.is_set():
                    break
        finally:
            self.finish("source ended" if not self.stop.is_set() else "stopping")
        return self.clips

    def _persons(self, frame: TimedFrame) -> list[Detection] | None:
        """Detections at or above the threshold, or None if the detector did not run.

        Motion gates the detector only while nothing is recorded: once a clip runs, a person
        who stands still (no motion) must keep it going, so it also looks at still frames."""
        moving = self.motion.update(frame.image)
        self.frames_moving += moving
        if not moving and not self.rule.recording:
            return None
        if self._last_detect_t is not None and frame.t - self._last_detect_t < 1.0 / self.cfg.detect_fps - EPS:
            return None
        self._last_detect_t = frame.t
        self.detector_runs += 1
        return [d for d in self.detector.detect(frame.image) if d[0] >= self.cfg.threshold]

    def _allowed(self, frame: TimedFrame) -> bool:
        return self.hours is None or self.hours.contains(frame.wall.astimezone())

    def process(self, frame: TimedFrame) -> None:
        """One frame through the clip rule: detect (when due), then start, split or stop a clip, keeping
        the pre-roll buffer so a clip starts before the person appeared."""
        self.frames_seen += 1
        persons = self._persons(frame)
        found = None if persons is None else bool(persons)
        oldest = self.buffer[0].t if self.buffer else frame.t
        event = self.rule.step(frame.t, found, self._allowed(frame), oldest)
        if event in (STOP, SPLIT):
            group = self.active.group_id if self.active is not None else ""
            self._close_clip(self.rule.stop_reason)
            if event == SPLIT:
                self._open_part(frame, persons or [], group)
                return
        if event == START:
            self._open_clip(frame, persons or [])
        elif self.active is not None:
            self.active.writer.add(frame)
            self.active.last_t = frame.t
            if persons:
                self._note(persons)
        else:
            self.buffer.append(frame)
            while self.buffer and frame.t - self.buffer[0].t > self.cfg.pre_roll_s + EPS:
                self.buffer.popleft()

    def _note(self, persons: list[Detection]) -> None:
        assert self.active is not None
        self.active.max_people = max(self.active.max_people, len(persons))
        self.active.max_confidence = max(self.active.max_confidence, max(c for c, _ in persons))

    def _open_clip(self, frame: TimedFrame, persons: list[Detection]) -> None:
        assert self.rule.first_t is not None
        pre = [f for f in self.buffer if f.t >= self.rule.first_t - EPS]
        self.buffer.clear()
        first = pre[0] if pre else frame
        self._start_writer([*pre, frame], persons, uuid.uuid4().hex, 1)
        assert self.active is not None
        log.info("person detected (%d, confidence %.2f) at %s: recording clip %s with %.1f s pre-roll",
                 len(persons), persons[0][0], frame.wall.isoformat(timespec="seconds"), self.active.key,
                 frame.t - first.t)
        # One snapshot per presence (the alert fast lane), not one per part.
        if self.cfg.snapshots and self.queue is not None:
            self.active.snapshot_key = self._snapshot(frame, persons, self.active.key)

    def _open_part(self, frame: TimedFrame, persons: list[Detection], group_id: str) -> None:
        """The next part of a presence that outlasted max_clip_s: it begins with this frame,
        the one the previous part stopped before, so the parts join with nothing lost."""
        self._start_writer([frame], persons, group_id, self.rule.part)
        assert self.active is not None
        log.info("people still in view: clip part %d of group %s is %s", self.rule.part, group_id, self.active.key)

    def _start_writer(self, frames: list[TimedFrame], persons: list[Detection], group_id: str, part: int) -> None:
        key = random_key(".mp4")
        first, last = frames[0], frames[-1]
        h, w = last.image.shape[:2]
        writer = ClipWriter(self.spool / key.rsplit("/", 1)[-1], w, h, self.fps)
        self.active = _Active(writer, key, first.t, last.t, first.wall, group_id=group_id, part=part)
        for f in frames:
            writer.add(f)
        if persons:
            self._note(persons)

    def _snapshot(self, frame: TimedFrame, persons: list[Detection], clip_key: str) -> str | None:
        ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok or self.queue is None:
            return None
        # Where the raw bucket notifies detect_people's queue of it: the alert fast lane.
        contract = load_contract()
        key = random_key(contract["frame_suffix"], prefix=contract["snapshot_prefix"])
        path = self.spool / key.rsplit("/", 1)[-1]
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(jpeg.tobytes())
        os.replace(tmp, path)
        h, w = frame.image.shape[:2]
        md = build_metadata(
            camera_id=self.camera_id, device_id=self.device_id, recorded_at=frame.wall,
            info=VideoInfo(None, w, h, None),
            stats=EdgeStats(len(persons), max(c for c, _ in persons), self.detector.name, self.cfg.threshold),
            extra={CLIP_KEY: clip_key, GROUP_ID: self.active.group_id if self.active else ""},
        )
        self.queue.enqueue(path, md, owned=True, content_type="image/jpeg", key=key, priority=SNAPSHOT_PRIORITY,
                           dedupe=False)
        return key

    def _close_clip(self, reason: str) -> None:
        active, self.active = self.active, None
        if active is None:
            return
        path = active.writer.close()
        clip = RecordedClip(active.key, path, active.first_t, active.last_t, active.recorded_at,
                            active.writer.frames, active.max_people, active.max_confidence, reason,
                            active.snapshot_key, group_id=active.group_id, part=active.part)
        log.info("clip %s done (%s): %.1f s, %d frames, max %d people, max confidence %.2f", active.key, reason,
                 active.last_t - active.first_t, active.writer.frames, active.max_people, active.max_confidence)
        if self.queue is not None:
            md = build_metadata(
                camera_id=self.camera_id, device_id=self.device_id, recorded_at=active.recorded_at,
                info=probe_video(path),
                stats=EdgeStats(active.max_people, active.max_confidence, self.detector.name, self.cfg.threshold),
                sample_fps=self.cfg.sample_fps,
                extra={GROUP_ID: active.group_id, PART: str(active.part)},
            )
            clip.queued = self.queue.enqueue(path, md, owned=True, key=active.key, dedupe=False)
        self.clips.append(clip)
        if self.on_clip:
            self.on_clip(clip)

    def finish(self, reason: str) -> None:
        """End the clip in progress (at the end of a file, or on SIGTERM): never lose it."""
        if self.active is not None:
            self.rule.recording = False
            self._close_clip(reason)
