"""The stalled-video sweeper: every video reaches an end state, even when a message is lost.

The barrier (vidsift.core.completion) waits for every frame of a segment. A frame whose message
reaches the DLQ without its last receive running the function (a receive while the function
is throttled counts, a crashed invocation, a message deleted by hand) is never given up, and
its video would wait with no alarm until the tracking table's TTL deleted it. So a scheduled
function looks for videos without an end state whose progress has not moved for longer
than ``STALL_AFTER_S`` (the tracking table's sparse index on ``open``), and for each:

- a segment split_frames never reported (its message failed for good): the video cannot be
  finished; it ends *failed*, the reason under ``errors/sweep_stalled/`` (redriving the
  split_frames DLQ later still completes it: the end state is then overwritten by tracked);
- a segment waiting for frames: the frames split_frames wrote (listed in the frames bucket)
  that are neither detected nor given up are given up now, so the segment is tracked
  without them (``gap_frames``), as on a last receive;
- a complete segment its video was not tracked with, or a video whose segments are all
  tracked but that was never stitched (a SendMessage lost): the message is sent again
  (track_people is idempotent).

Every run counts the stalled videos it found on the ``StalledVideos`` metric, which has an
alarm (serverless.yml): stalled videos mean messages were lost, which is worth knowing even
when the sweeper could finish them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from vidsift import aws, contract
from vidsift.core import completion, keys
from vidsift.core.errors import BadInputError
from vidsift.logs import get_logger
from vidsift.settings import Settings
from vidsift.stages import barrier
from vidsift.stages.runtime import metric, record_bad_input
from vidsift.storage.progress import PROGRESS_N, DynamoProgressStore

STAGE = "sweep_stalled"
STALLED_METRIC = "StalledVideos"
logger = get_logger(STAGE)


@dataclass(frozen=True)
class SweepConfig:
    """One sweep's settings: the sweeper's part of the settings and the table's open index."""

    table: str
    index: str
    frames_bucket: str
    track_queue_url: str
    stall_after_s: float

    @classmethod
    def from_settings(cls, settings: Settings, stall_after_s: float | None = None) -> SweepConfig:
        """The sweeper's settings; ``stall_after_s`` overrides STALL_AFTER_S (a local run's end)."""
        own = settings.sweep
        return cls(table=own.table, index=contract.load()["tracking_open_index"], frames_bucket=own.frames_bucket,
                   track_queue_url=own.track_queue_url,
                   stall_after_s=own.stall_after_s if stall_after_s is None else stall_after_s)


@dataclass
class SweepResult:
    """What one sweep did, video by video, for its log line and for tests to check which videos
    were finished and which failed."""

    stalled: list[str] = field(default_factory=list)
    #: Videos given up frames or sent on again: they end tracked once track_people has run.
    finished: list[str] = field(default_factory=list)
    #: Videos that ended failed, with their reason under errors/sweep_stalled/.
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"stalled": len(self.stalled), "finished": len(self.finished), "failed": len(self.failed)}


def sweep(config: SweepConfig, now: float | None = None) -> SweepResult:
    """Find the videos stalled at ``now`` (default: the clock) and finish or fail each."""
    now = time.time() if now is None else now
    before = now - config.stall_after_s
    result = SweepResult()
    for video in DynamoProgressStore(config.table).open_videos(config.index, updated_before=before):
        item = DynamoProgressStore(config.table).item(video)
        if item.get("state"):  # ended meanwhile: the index forgets it
            DynamoProgressStore(config.table).mark(video, remove=["open"])
            continue
        if "segments" not in item:
            continue
        parts = [completion.segment_part(video, k) for k in range(int(item["segments"]))]
        found = DynamoProgressStore(config.table).get([(p, PROGRESS_N) for p in parts])
        segs = {k: found.get((p, PROGRESS_N), {}) for k, p in enumerate(parts)}
        latest = max([float(item.get("updated_at", 0))] + [float(s.get("updated_at", 0)) for s in segs.values()])
        if latest >= before:
            continue  # still moving: a long video's segments are being detected
        result.stalled.append(video)
        if _finish(config, video, item, segs):
            result.finished.append(video)
        else:
            result.failed.append(video)
    metric(logger, STALLED_METRIC, len(result.stalled))
    if result.stalled:
        logger.warning("stalled videos found", extra=result.as_dict() | {"videos": result.stalled[:20]})
    return result


def _finish(config: SweepConfig, video: str, item: dict[str, Any], segs: dict[int, dict[str, Any]]) -> bool:
    """Move one stalled video on; False if it can only be reported (its end state: failed)."""
    unsampled = [k for k, s in segs.items() if int(s.get("expected", completion.SENTINEL)) < 0]
    if unsampled:
        return _fail(config, video, item, f"stalled: split_frames never reported segment(s) {unsampled} of "
                                          f"{len(segs)} (see split_frames' DLQ and errors/split_frames/; redriving "
                                          "it finishes the video)")
    waiting = [k for k, s in segs.items() if not completion.segment_detected(s)]
    if waiting:
        written = _frames_written(config, video)
        for k in waiting:
            s = segs[k]
            span = completion.span(s)
            mine = {i for i in written if span and span[1] <= i <= span[2]}
            lost = mine - completion.real(s.get("done")) - completion.real(s.get("failed"))
            if len(completion.real(s.get("done")) | completion.real(s.get("failed")) | lost) < int(s["expected"]):
                return _fail(config, video, item, f"stalled: segment {k} expects {s['expected']} frames but fewer "
                                                  "exist in the frames bucket (deleted?)")
            logger.warning("stalled segment: frames never settled are given up",
                           extra={"video_id": video, "segment": k, "frames": sorted(lost)[:50]})
            barrier.settle(config.table, config.track_queue_url, video, k, failed=lost)
    tracked = completion.real(item.get("tracked"))
    for k, s in segs.items():
        if k not in waiting and (k not in tracked or completion.recovered(s) - completion.real(item.get("recovered"))):
            message = completion.SegmentMessage(video, k, completion.generation(s))
            aws.send_messages(config.track_queue_url, [message.to_json()])
    if completion.tracked(item):  # every segment tracked, the video never stitched
        aws.send_messages(config.track_queue_url,
                          [completion.VideoMessage(video, completion.generation(item)).to_json()])
    # Moved on: the next sweep waits a whole period before judging it again.
    DynamoProgressStore(config.table).mark(video, set_={"updated_at": barrier.now()})
    return True


def _frames_written(config: SweepConfig, video: str) -> set[int]:
    """Frame indices split_frames wrote for the video (its frame keys in the frames bucket)."""
    out = set()
    for key in aws.list_keys(config.frames_bucket, keys.frames_prefix(video)):
        parsed = keys.parse_frame_key(key)
        if parsed and parsed[0] == video:
            out.add(parsed[1])
    return out


def _fail(config: SweepConfig, video: str, item: dict[str, Any], reason: str) -> bool:
    subject = f"video:{video}"
    record_bad_input(logger, STAGE, BadInputError(subject, reason), subject=subject, message_id=None,
                     version=str(item.get("version") or ""))
    barrier.fail_video(config.table, video, reason=reason, source=str(item.get("source", "")),
                       version=str(item.get("version") or ""))
    return False
