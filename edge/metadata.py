"""The file probe that fills a clip's S3 user metadata: duration, frame size, recording start.

The metadata itself (its keys and how values are written) is vidsift.core.uploads, shared
with the service, which reads the same keys; what is left here needs the clip file and PyAV.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vidsift.core.uploads import VideoInfo

log = logging.getLogger(__name__)


def probe_video(path: Path) -> VideoInfo:
    """Duration, frame size and the container's creation time, read with PyAV.

    A file PyAV cannot read is still a clip to deliver (the pipeline records the error), so a
    failed probe yields an empty VideoInfo and a warning rather than an exception.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            duration = None
            if container.duration:
                duration = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            created = None
            tag = container.metadata.get("creation_time") or stream.metadata.get("creation_time")
            if tag:
                try:
                    created = datetime.fromisoformat(tag.replace("Z", "+00:00"))
                    created = created if created.tzinfo else created.replace(tzinfo=UTC)
                except ValueError:
                    created = None
            return VideoInfo(duration, stream.codec_context.width or None, stream.codec_context.height or None,
                             created)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        log.warning("could not probe %s (%s): uploading it without duration and frame size", path, exc)
        return VideoInfo(None, None, None, None)


def recording_start(path: Path, info: VideoInfo) -> datetime:
    """Best guess of when a file's recording started: its creation_time tag, else mtime - duration.

    A camera writes the file while it records, so its modification time is the end of recording.
    """
    if info.creation_time is not None:
        return info.creation_time.astimezone(UTC)
    end = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    return end - timedelta(seconds=info.duration_s or 0.0)
