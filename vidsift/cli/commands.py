"""The ``vidsift`` command: run videos through the pipeline locally, keep a local stack up,
query the results with SQL, or extract frames."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

DEFAULT_OUT = Path("vidsift-out")


def _add_sampling(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fps", type=float, default=1.0, help="frames sampled per second (default 1; below 1 allowed)")
    g.add_argument("--keyframes", action="store_true", help="sample keyframes only (fastest)")


def _positive(value: float) -> float:
    if not value > 0:
        raise SystemExit(f"vidsift: --fps must be positive, got {value}")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    """``vidsift run``: the whole pipeline on the embedded local AWS for the given videos, then the
    results folder, the report and a summary (exit 1 unless the run was ok, so scripts can tell)."""
    from vidsift.local.runner import run_videos

    paths = [Path(p) for p in args.videos]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"vidsift: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    layout = None
    if args.cameras:  # checked before anything starts: a bad layout is one clear error
        from vidsift.cli.lines import read_layout_file

        layout = read_layout_file(args.cameras, "vidsift run")
        if layout is None:
            return 2
    started = time.monotonic()
    report = run_videos(paths, Path(args.out), fps=_positive(args.fps), keyframes=args.keyframes,
                        camera_id=args.camera_id, recorded_at=args.recorded_at, detector=args.detector,
                        progress=_progress_view(args), dedup=args.dedup, layout=layout,
                        visitors=args.visitors)
    elapsed = time.monotonic() - started
    from vidsift.report import load_results, run_costs, write_report

    results = load_results(report.out)  # once, for the summary's costs and the report
    cost_line, costs = run_costs(report.out, results)
    print()
    print(f"{'video':<40} {'status':<7} {'frames':>6} {'people':>6} {'tracks':>6} {'face calls':>10} {'faces':>5} "
          f"{'est. AWS cost':>13}")
    for v in report.videos:
        print(f"{v.path.name[:40]:<40} {'ok' if v.ok else 'FAILED':<7} {v.frames_sampled:>6} "
              f"{v.frames_with_people:>6} {v.tracks:>6} {v.detect_faces_calls:>10} {v.faces:>5} "
              f"{costs.get(v.key, ''):>13}")
        for err in v.errors:
            print(f"    error: {err}")
    for err in report.unowned_errors:
        print(f"error: {err}")
    if not report.finished:
        print("error: the run timed out before every queue drained", file=sys.stderr)
    failed = sum(not v.ok for v in report.videos)
    print(f"\n{len(report.videos)} video(s), {failed} failed, {elapsed:.1f} s. Results in {report.out}/ "
          f"(query with: vidsift query --out {report.out} \"SELECT ...\")")
    path = write_report(report.out, results)
    print(cost_line)
    print(f"Report: {path}")
    return 0 if report.ok else 1


def _progress_view(args: argparse.Namespace) -> str:
    """Bars only where they are drawn: on a terminal. Into a pipe or a file a redrawn bar is
    escape codes, so each video gets one plain line when it finishes instead."""
    if args.quiet:
        return "none"
    if args.progress != "auto":
        return str(args.progress)
    return "bars" if sys.stdout.isatty() and sys.stderr.isatty() else "lines"


def cmd_query(args: argparse.Namespace) -> int:
    """``vidsift query``: see vidsift.cli.query."""
    from vidsift.cli.query import query

    return query(args.out, args.sql, args.format)


def cmd_up(args: argparse.Namespace) -> int:
    """``vidsift up``: the local stack left running for any AWS client (the CLI, an SDK, the edge
    uploader) until Ctrl-C, then its results exported, for trying the pipeline by hand."""
    from vidsift import contract
    from vidsift.local.dispatcher import Dispatcher
    from vidsift.local.results import collect, export
    from vidsift.local.stack import LocalStack

    out = Path(args.out)
    stack = LocalStack(port=args.port, sample_fps=_positive(args.fps),
                       sample_mode="keyframes" if args.keyframes else "fps", detector=args.detector)
    with stack:
        names = stack.names
        print("vidsift local stack is up. Export these to use it with any AWS client:\n")
        for k, v in stack.user_env().items():
            print(f"  export {k}={v}")
        print("\nBuckets:")
        for role in contract.load()["buckets"]:
            print(f"  {role:<10} {names.bucket(role)}")
        prefix = contract.load()["raw_upload_prefix"]
        print(f"\nDrop a video:  aws s3 cp clip.mp4 s3://{names.bucket('raw')}/{prefix}clip.mp4 "
              f"--endpoint-url {stack.endpoint_url}")
        print(f"Results go to {out}/ ; query them with: vidsift query --out {out} \"SELECT * FROM people\"")
        if stack.with_models:
            from vidsift.core import matching

            print(f"Known faces (collection {matching.collection_name(names)}): "
                  "vidsift faces index --name \"Ada Lovelace\" ada.jpg")
        if stack.alert_queue_url:
            print(f"Alerts (set ALERT_RULES before vidsift up) go to {stack.alert_topic_arn}; read them with: "
                  f"aws sqs receive-message --queue-url {stack.alert_queue_url} --endpoint-url {stack.endpoint_url}")
        print("Ctrl-C stops the stack.\n", flush=True)

        def on_batch(stage: str, stats: object) -> None:
            logging.getLogger("vidsift").info("%s: %s", stage, stats)

        dispatcher = Dispatcher(stack, on_batch=on_batch)
        busy = False
        try:
            while True:
                handled = sum(dispatcher.poll(s) for s in reversed(contract.STAGES))
                if handled:
                    busy = True
                    continue
                if busy and dispatcher.in_flight() == 0:
                    export(stack, collect(stack), out)
                    print(f"idle: results exported to {out}/", flush=True)
                    busy = False
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nstopping")
    return 0


def cmd_frames(args: argparse.Namespace) -> int:
    """The sampling split_frames does, on a local file: same code, same frame names and indices."""
    import json

    from vidsift.core.errors import BadInputError
    from vidsift.core.frames import MAX_JPEG_BYTES, SamplingOptions, VideoFile, VideoInfo

    out = Path(args.out)
    dedup = 0
    if args.dedup:  # numpy (pHash) is imported only when asked for: it is a tenth of a short run
        from vidsift.core.dedup import DEFAULT_DISTANCE

        dedup = args.dedup_bits if args.dedup_bits is not None else DEFAULT_DISTANCE
    try:
        opts = SamplingOptions(fps=_positive(args.fps), keyframes=args.keyframes, jpeg_quality=args.quality,
                               max_side=args.max_side, max_bytes=args.max_bytes or MAX_JPEG_BYTES, dedup_distance=dedup,
                               strategy=args.strategy)
    except ValueError as exc:
        print(f"vidsift frames: {exc}", file=sys.stderr)
        return 2
    if not Path(args.video).is_file():
        print(f"vidsift frames: no such file: {args.video}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    info = VideoInfo()
    started = time.monotonic()
    error = None
    try:
        with VideoFile(args.video, what=args.video) as video:
            for frame in video.sample(opts, info, start_s=args.start, end_s=args.end):
                (out / f"{frame.index:06d}.jpg").write_bytes(frame.jpeg)
    except BadInputError as exc:
        error = exc
        print(f"vidsift frames: {exc}", file=sys.stderr)
    summary = {"video": str(args.video), **{k: v for k, v in vars(info).items()},
               "seconds": round(time.monotonic() - started, 3)}
    if info.frames_decoded or not error:
        (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    dedup = f", {info.duplicates_skipped} near-duplicates skipped" if opts.dedup_distance else ""
    print(f"{info.frames_kept} frames kept of {info.frames_sampled} sampled{dedup}, {info.frames_decoded} decoded "
          f"({info.strategy}), {summary['seconds']:.2f} s -> {out}/")
    return 1 if error else 0


def build_parser() -> argparse.ArgumentParser:
    """Every ``vidsift`` command in one parser; the faces, visitors, cameras, report and plan
    commands add their own subparsers from their modules."""
    parser = argparse.ArgumentParser(prog="vidsift", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="process videos through the pipeline on an embedded local AWS")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="results folder (default ./vidsift-out)")
    _add_sampling(p)
    p.add_argument("--camera-id", help="camera id recorded with every row")
    p.add_argument("--recorded-at", help="ISO 8601 recording start, so rows get captured_at")
    p.add_argument("--cameras", metavar="FILE",
                   help="camera layout (YAML): lines and zones counted into the crossings and zone_visits tables")
    p.add_argument("--dedup", action="store_true",
                   help="skip frames that repeat the last kept one (perceptual hash), as DEDUP=on in the cloud")
    p.add_argument("--detector", default="auto", choices=["auto", "ssdlite", "yolo"],
                   help="person detector backend of the local endpoint")
    p.add_argument("--quiet", action="store_true", help="the summary table and errors only: no progress, no logs")
    p.add_argument("--progress", choices=["auto", "bars", "lines"], default="auto",
                   help="bars on a terminal, else one line per finished video (auto, the default)")
    p.add_argument("--visitors", action="store_true",
                   help="opt-in: recognise returning visitors by their faces across runs (biometric data: "
                        "see the README's Visitors section); kept in OUT/visitors/")
    _add_verbose(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("query", help="run SQL over the results (tables: people, faces, tracks, crossings, zone_visits)")
    p.add_argument("sql", help="SQL text, or - to read it from standard input")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("up", help="keep a local stack running; drop videos in with any S3 client")
    p.add_argument("--port", type=int, default=4566)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    _add_sampling(p)
    p.add_argument("--detector", default="auto", choices=["auto", "ssdlite", "yolo"])
    _add_verbose(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("frames", help="extract frames with the same code as split_frames")
    p.add_argument("video")
    p.add_argument("--out", required=True, help="folder for <index>.jpg files and summary.json")
    _add_sampling(p)
    p.add_argument("--dedup", action="store_true", help="skip frames that repeat the last kept one (pHash)")
    p.add_argument("--dedup-bits", type=int, metavar="N",
                   help="with --dedup: frames within N of 64 pHash bits are repeats (default 6)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    p.add_argument("--max-side", type=int, default=1920, help="longest side of a frame in pixels (default 1920)")
    p.add_argument("--max-bytes", type=int, default=None,
                   help="no JPEG above this size: lower quality, then smaller (default: Rekognition's 5 MB)")
    p.add_argument("--start", type=float, default=0.0, help="first second to sample (as a segment does)")
    p.add_argument("--end", type=float, default=None, help="sample up to this second (exclusive)")
    p.add_argument("--strategy", choices=["auto", "sequential", "seek"], default="auto",
                   help="decode every frame, or seek past GOPs no sample needs (auto: cheaper by the keyframe index)")
    p.set_defaults(func=cmd_frames)

    from vidsift.report.cli import add_parser as add_report_parser

    add_report_parser(sub)

    from vidsift.cli.faces import add_parser as add_faces_parser

    add_faces_parser(sub)

    from vidsift.cli.lines import add_parsers as add_lines_parsers

    add_lines_parsers(sub)
    from vidsift.cli.visitors import add_parser as add_visitors_parser

    add_visitors_parser(sub)
    from vidsift.report.plan import add_parser as add_plan_parser

    add_plan_parser(sub)
    return parser


def _add_verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true",
                   help="every log line, the libraries' too (botocore, the model services)")


#: Libraries whose INFO lines say nothing a user acts on ("Found endpoint for ... via
#: environment_service"): shown with -v only.
_CHATTY = ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug")


def configure_logging(*, quiet: bool, verbose: bool) -> None:
    """Readable lines on stderr: vidsift's INFO by default, errors only with --quiet (the
    summary table still prints), everything with -v (which wins over --quiet). A process that
    set up logging itself (a test run, a program embedding vidsift) keeps its own."""
    if logging.getLogger().handlers:
        return
    level = logging.INFO if verbose or not quiet else logging.ERROR
    if verbose or not quiet:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
    else:
        os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"  # the handlers' Powertools loggers
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    """Parse, configure logging once, run the command and return its exit code (``entry`` exits with it)."""
    args = build_parser().parse_args(argv)
    configure_logging(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False))
    return int(args.func(args))


def entry() -> NoReturn:
    """The ``vidsift`` command (and ``python -m vidsift.cli``): ``main``, then straight out.

    Why not a normal exit: after a run the interpreter holds the detector, the tracker's
    SciPy, thousands of modules, and tearing them down took 0.5 s after the results and the
    report were written (a 2-minute clip, 2 cores): time a user waits for nothing. Whatever
    ``main`` starts (the local stack, its child processes, its thread pools) it also stops
    before returning, so what is left to do is flush: logging, stdout, stderr. An uncaught
    exception still ends the normal way, with its traceback. Tests call ``main``."""
    try:
        code = main()
    except SystemExit as exc:  # argparse's --help and errors, and sys.exit("message")
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            code = 1
        else:
            code = exc.code or 0
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # the reader went away (`vidsift query ... | head`)
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    entry()
