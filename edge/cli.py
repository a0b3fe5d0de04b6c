"""`vidsift-edge`: upload, watch, record, run (watch + record as one service), policy, status.

Every setting can be given as a flag named like its config key (``--disk-cap-bytes 2GiB``),
as ``VIDSIFT_EDGE_DISK_CAP_BYTES``, or in the TOML file; see edge.config for precedence.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.config import ConfigError, EdgeConfig, load_config
from edge.queue import DONE, UploadQueue

log = logging.getLogger("edge")


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (also VIDSIFT_EDGE_<NAME> or the TOML file)")
    group.add_argument("--config", type=Path, help="TOML config file (default $VIDSIFT_EDGE_CONFIG or "
                       "/etc/vidsift-edge/config.toml if present)")
    hints = typing.get_type_hints(EdgeConfig)
    for name, typ in hints.items():
        flag = "--" + name.replace("_", "-")
        if typ is bool:
            group.add_argument(flag, dest=f"cfg_{name}", action=argparse.BooleanOptionalAction, default=None)
        else:
            group.add_argument(flag, dest=f"cfg_{name}", metavar=name.upper(), default=None)
    group.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    """Every ``vidsift-edge`` command, each with a flag for every config key (``--disk-cap-bytes``),
    so anything the TOML file sets can be tried from the command line first."""
    p = argparse.ArgumentParser(prog="vidsift-edge", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upload", help="queue video files and upload them to the raw bucket "
                        "(with no files: finish what is already queued)")
    up.add_argument("files", nargs="*", type=Path)
    up.add_argument("--delete", action="store_true", help="remove each file once S3 has confirmed it")
    up.add_argument("--max-wait", type=float, default=None, help="give up waiting after this many seconds "
                    "(files stay queued and resume on the next run)")
    _add_config_flags(up)

    w = sub.add_parser("watch", help="upload video files that appear in a folder, once complete")
    w.add_argument("directory", type=Path)
    _add_config_flags(w)

    r = sub.add_parser("record", help="record person-triggered clips from a camera, URL or video file")
    r.add_argument("source", help="camera index (0), rtsp://, http:// (MJPEG) URL, or a video file")
    r.add_argument("--start-time", help="for a video file: ISO 8601 wall time of its first frame")
    r.add_argument("--no-upload", action="store_true", help="only queue clips (another process uploads)")
    r.add_argument("--max-wait", type=float, default=None, help="for a video file: stop waiting for uploads "
                   "after this many seconds")
    _add_config_flags(r)

    run = sub.add_parser("run", help="the service: upload, plus watch_dir and/or source from the config")
    _add_config_flags(run)

    pol = sub.add_parser("policy", help="print the device's least-privilege IAM policy")
    pol.add_argument("--bucket", required=True)
    pol.add_argument("--kms-key-arn", help="also allow the KMS calls SSE-KMS with this key needs")

    st = sub.add_parser("status", help="what the queue holds")
    _add_config_flags(st)
    return p


def _config(args: argparse.Namespace) -> EdgeConfig:
    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_")}
    return load_config(getattr(args, "config", None), overrides=overrides)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_previous_handlers: dict[int, Any] = {}


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (systemd stop) and SIGINT end the run cleanly: the clip being recorded is closed
    and queued, an upload in progress stops between parts and resumes on the next start."""

    def handler(signum: int, _frame: Any) -> None:
        log.info("%s: finishing the current clip and stopping", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        _previous_handlers.setdefault(sig, signal.getsignal(sig))
        signal.signal(sig, handler)


def _restore_signals() -> None:
    while _previous_handlers:
        sig, previous = _previous_handlers.popitem()
        signal.signal(sig, previous)


def _metadata_for(cfg: EdgeConfig, device_id: str):
    from edge.metadata import probe_video, recording_start
    from vidsift.core.uploads import build_metadata

    def metadata_for(path: Path) -> dict[str, str]:
        info = probe_video(path)
        return build_metadata(camera_id=cfg.camera_id, device_id=device_id, recorded_at=recording_start(path, info),
                              info=info, sample_fps=cfg.sample_fps)

    return metadata_for


def _uploader_thread(queue: UploadQueue, cfg: EdgeConfig, stop: threading.Event) -> threading.Thread:
    """Upload from this process once it holds the state dir's uploader lock (another process may)."""
    from edge.uploader import Uploader, UploaderLock

    def work() -> None:
        lock = UploaderLock(cfg.state_dir)
        announced = False
        while not stop.is_set() and not lock.acquire():
            if not announced:
                log.info("another vidsift-edge process is uploading from %s; queuing only", cfg.state_dir)
                announced = True
            stop.wait(5)
        if stop.is_set():
            return
        try:
            Uploader(queue, cfg, stop=stop).run()
        except Exception:  # keep the recorder going; systemd restarts us if this was fatal
            log.exception("uploader crashed")
            stop.set()
        finally:
            lock.release()

    t = threading.Thread(target=work, name="uploader", daemon=True)
    t.start()
    return t


def cmd_upload(args: argparse.Namespace, cfg: EdgeConfig) -> int:
    """``vidsift-edge upload``: queue files (or nothing: just drain the queue) and upload until done
    or ``--max-wait``, for a device that records by other means."""
    from edge.device import resolve_device_id
    from edge.uploader import Uploader, UploaderLock
    from edge.watcher import video_suffixes

    queue = UploadQueue(cfg.state_dir, cfg.disk_cap_bytes)
    device_id = resolve_device_id(cfg.device_id)
    metadata_for = _metadata_for(cfg, device_id)
    ids: list[int] = []
    for f in args.files:
        if not f.is_file():
            print(f"error: {f} is not a file", file=sys.stderr)
            return 2
        if f.suffix.lower() not in video_suffixes():
            print(f"error: {f}: the pipeline takes only {' '.join(video_suffixes())}", file=sys.stderr)
            return 2
    for f in args.files:
        clip = queue.enqueue(f, metadata_for(f), owned=args.delete)
        ids.append(clip.id)
    lock = UploaderLock(cfg.state_dir)
    if not lock.acquire():
        print(f"queued {len(ids)} file(s); the running vidsift-edge service will upload them")
        return 0
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        deadline = None if args.max_wait is None else time.monotonic() + args.max_wait
        Uploader(queue, cfg, stop=stop).run(until_empty=True, deadline=deadline)
    finally:
        lock.release()
    bucket = cfg.raw_bucket()
    ok = True
    for clip_id, f in zip(ids, args.files, strict=True):
        clip = queue.get(clip_id)
        ok &= clip.state == DONE
        status = f"s3://{bucket}/{clip.key}" if clip.state == DONE else f"{clip.state} ({clip.last_error})"
        print(f"{f} -> {status}")
    left = queue.stats().get("pending", {}).get("clips", 0)
    if left:
        print(f"{left} clip(s) still queued; run `vidsift-edge upload` again (or the service) to finish")
    return 0 if ok and not left else 1


def cmd_watch(args: argparse.Namespace, cfg: EdgeConfig) -> int:
    """``vidsift-edge watch DIR``: the service on a folder a camera writes to, without a live source."""
    cfg.watch_dir = args.directory
    cfg.source = None
    return _serve(cfg)


def cmd_run(args: argparse.Namespace, cfg: EdgeConfig) -> int:
    """``vidsift-edge run``: the service as systemd runs it, everything from the config."""
    if cfg.watch_dir is None and cfg.source is None:
        log.warning("neither watch_dir nor source is set: only uploading what is already queued")
    return _serve(cfg)


def _serve(cfg: EdgeConfig, start_wall: datetime | None = None) -> int:
    """The long-running service: an uploader, and a watcher and/or recorder, until SIGTERM."""
    from edge.device import resolve_device_id
    from edge.watcher import Watcher

    cfg.raw_bucket()  # fail now, not at the first upload
    stop = threading.Event()
    _stop_on_signals(stop)
    queue = UploadQueue(cfg.state_dir, cfg.disk_cap_bytes)
    device_id = resolve_device_id(cfg.device_id)
    log.info("vidsift-edge: camera %s, device %s, bucket %s, state %s", cfg.camera_id, device_id, cfg.raw_bucket(),
             cfg.state_dir)
    threads = [_uploader_thread(queue, cfg, stop)]
    try:
        if cfg.watch_dir is not None:
            watcher = Watcher(cfg.watch_dir, queue, _metadata_for(cfg, device_id), settle_s=cfg.settle_s,
                              poll_s=cfg.poll_s, keep=cfg.keep_uploaded)
            t = threading.Thread(target=watcher.run, args=(stop,), name="watcher", daemon=True)
            t.start()
            threads.append(t)
        if cfg.source is not None:
            _record(cfg, queue, device_id, stop, start_wall)
            if not stop.is_set():  # a live source only returns when stopped; a file has ended
                log.info("source ended; still uploading (SIGTERM to stop)")
        while not stop.is_set():
            stop.wait(1)
    finally:
        stop.set()  # also when the recorder failed: let the uploader finish its part and stop
        deadline = time.monotonic() + 20  # within systemd's TimeoutStopSec; the queue keeps the rest
        for t in threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
    return 0


def _record(cfg: EdgeConfig, queue: UploadQueue, device_id: str, stop: threading.Event,
            start_wall: datetime | None) -> list:
    from edge.detector import load_detector
    from edge.recorder import Recorder
    from edge.source import LiveSource, open_source

    assert cfg.source is not None
    source = open_source(cfg.source, start_wall, cfg.reconnect_max_s, cfg.reconnect_base_s, cfg.stall_timeout_s)
    detector = load_detector(cfg.detector, cfg.model_pb, cfg.model_pbtxt, cfg.detector_threads)
    recorder = Recorder(cfg, queue, detector, camera_id=cfg.camera_id, device_id=device_id, fps=source.fps,
                        stop=stop)
    if isinstance(source, LiveSource):  # the camera dropped or hung: close and queue the clip in progress now
        source.on_lost = recorder.finish
    log.info("recording from %s with %s (threshold %g)", source.name, detector.name, cfg.threshold)
    return recorder.run(source.frames(stop))


def cmd_record(args: argparse.Namespace, cfg: EdgeConfig) -> int:
    """``vidsift-edge record``: person-triggered clips from a file or a camera, uploaded (or kept
    with ``--no-upload``), to try the recorder's rule on known footage."""
    from edge.device import resolve_device_id
    from edge.uploader import Uploader, UploaderLock

    start_wall = datetime.fromisoformat(args.start_time.replace("Z", "+00:00")) if args.start_time else None
    cfg.source = args.source
    if "://" in args.source or not Path(args.source).is_file():  # a live camera: runs until SIGTERM
        if args.no_upload:
            stop = threading.Event()
            _stop_on_signals(stop)
            queue = UploadQueue(cfg.state_dir, cfg.disk_cap_bytes)
            _record(cfg, queue, resolve_device_id(cfg.device_id), stop, start_wall)
            return 0
        cfg.watch_dir = None
        return _serve(cfg, start_wall)
    # A video file: record it, then upload its clips and exit (scripts and tests).
    stop = threading.Event()
    _stop_on_signals(stop)
    queue = UploadQueue(cfg.state_dir, cfg.disk_cap_bytes)
    clips = _record(cfg, queue, resolve_device_id(cfg.device_id), stop, start_wall)
    for c in clips:
        print(f"clip {c.key}: {c.first_t:.1f}-{c.last_t:.1f} s, max {c.max_people} people, "
              f"confidence {c.max_confidence:.2f} ({c.stop_reason})")
    if args.no_upload or not clips:
        return 0
    lock = UploaderLock(cfg.state_dir)
    if not lock.acquire():
        print("clips queued; the running vidsift-edge service will upload them")
        return 0
    try:
        deadline = None if args.max_wait is None else time.monotonic() + args.max_wait
        emptied = Uploader(queue, cfg, stop=stop).run(until_empty=True, deadline=deadline)
    finally:
        lock.release()
    return 0 if emptied else 1


def cmd_policy(args: argparse.Namespace) -> int:
    """``vidsift-edge policy``: the least-privilege IAM policy a device's credentials need (upload
    under the raw prefix, and the KMS key if any), printed for an administrator."""
    from edge.policy import policy_json

    print(policy_json(args.bucket, args.kms_key_arn))
    return 0


def cmd_status(args: argparse.Namespace, cfg: EdgeConfig) -> int:
    """``vidsift-edge status``: the queue's clips and bytes by state and the oldest pending age, for a
    person or a monitoring script checking the device keeps up."""
    print(json.dumps(UploadQueue(cfg.state_dir, cfg.disk_cap_bytes).stats(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse, load the config and run the command; a bad setting or a missing model/source file is
    one line and exit 2, not a traceback."""
    args = build_parser().parse_args(argv)
    if args.command == "policy":
        return cmd_policy(args)
    _setup_logging(args.verbose)
    try:
        cfg = _config(args)
        handler = {"upload": cmd_upload, "watch": cmd_watch, "record": cmd_record, "run": cmd_run,
                   "status": cmd_status}[args.command]
        return handler(args, cfg)
    except (ConfigError, FileNotFoundError) as exc:  # a setting, or a model/pbtxt/source path
        print(f"vidsift-edge: {exc}", file=sys.stderr)
        return 2
    finally:
        _restore_signals()


if __name__ == "__main__":
    sys.exit(main())
