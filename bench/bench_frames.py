"""Frame extraction: ``vidsift frames`` side by side with the ffmpeg command line and a naive
OpenCV loop, on a 2-minute 720p30 H.264 video with a keyframe every 2 s.

Every contender runs in its own process, so its wall time, CPU time (user + system, from
the child's own rusage) and peak memory (the child's ``ru_maxrss``) are its alone. Rounds
are interleaved and the median round is reported, because a shared machine is noisy.
Then the memory goal is checked on a one-hour 1080p video (built once by repeating a
generated minute with stream copy, and cached).

    python -m bench frames          (or: make bench)
    VIDSIFT_BENCH_ROUNDS=5          rounds per contender (default 3)
    VIDSIFT_BENCH_HOUR=0            skip the one-hour memory run
    VIDSIFT_BENCH_CACHE=DIR         where the generated videos are kept (default: $TMPDIR/vidsift-bench)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Goals from the issue: vidsift --fps 1 no slower than ffmpeg fps=1; keyframes-only at least
#: 4x faster than ffmpeg fps=1; under 300 MB peak on an hour of 1080p.
GOAL_FPS_RATIO = 1.0
GOAL_KEYFRAME_SPEEDUP = 4.0
GOAL_PEAK_MB = 300.0
ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    d = Path(os.environ.get("VIDSIFT_BENCH_CACHE") or Path(tempfile.gettempdir()) / "vidsift-bench")
    d.mkdir(parents=True, exist_ok=True)
    return d


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:
        exe = shutil.which("ffmpeg")
        if not exe:
            raise SystemExit("bench frames: no ffmpeg (pip install imageio-ffmpeg, or apt install ffmpeg)") from None
        return exe


def clip_720p(cache: Path) -> Path:
    """120 s, 1280x720, 30 fps, keyframe every 2 s: six bundled photos, 20 s each, drifting with noise."""
    from vidsift.testing.samples import DEMO_SEGMENTS, Segment, make_video

    path = cache / "bench-720p30-120s-gop2.mp4"
    if not path.exists():
        print(f"generating {path.name} (once; cached in {cache}) ...", flush=True)
        tmp = path.with_suffix(".partial.mp4")
        make_video(tmp, [Segment(s.photo, 20) for s in DEMO_SEGMENTS], fps=30, width=1280, height=720,
                   gop_seconds=2.0)
        tmp.rename(path)
    return path


def hour_1080p(cache: Path) -> Path:
    """3600 s of 1920x1080 at 30 fps, keyframe every 2 s: a generated minute repeated 60 times
    by stream copy (timestamps run on), so it costs a minute of encoding, not an hour."""
    from vidsift.testing.samples import DEMO_SEGMENTS, make_video

    path = cache / "bench-1080p30-3600s-gop2.mp4"
    if path.exists():
        return path
    minute = cache / "bench-1080p30-60s-gop2.mp4"
    if not minute.exists():
        print(f"generating {minute.name} (once) ...", flush=True)
        tmp = minute.with_suffix(".partial.mp4")
        segs = [type(s)(s.photo, 10) for s in DEMO_SEGMENTS]
        make_video(tmp, segs, fps=30, width=1920, height=1080, gop_seconds=2.0)
        tmp.rename(minute)
    listing = cache / "hour.txt"
    listing.write_text("".join(f"file '{minute}'\n" for _ in range(60)))
    tmp = path.with_suffix(".partial.mp4")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    str(tmp)], check=True)
    tmp.rename(path)
    return path


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_mb: float
    frames: int
    ok: bool
    error: str = ""


#: Starts a contender and reports its rusage. Why a launcher: Linux carries the RSS high-water
#: mark of the process that execs into the new program's ru_maxrss, so a contender started
#: straight from this (large) process would report this process's peak, not its own (every
#: row once read 201 MB, ffmpeg's included). Started from a small interpreter, it reports its own.
_LAUNCH = """
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
               "peak_mb": usage.ru_maxrss / 1024}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(cmd: list[str], out: Path) -> Run:
    """Run one contender in its own process; its rusage comes from wait4, so nothing else counts."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCH, report.name, *cmd],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        assert proc.stderr is not None
        err = proc.stderr.read()  # drained while it runs, so it never blocks on a full pipe
        proc.wait()
        figures = json.loads(Path(report.name).read_text())
    frames = sum(1 for p in out.iterdir() if p.suffix == ".jpg")
    return Run(**figures, frames=frames, ok=proc.returncode == 0,
               error=err.decode(errors="replace")[-300:] if proc.returncode else "")


def opencv_loop(video: str, out: str, every: int) -> None:
    """The naive loop: read (decode and convert) every frame, write every Nth."""
    import cv2

    cap = cv2.VideoCapture(video)
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % every == 0:
            cv2.imwrite(os.path.join(out, f"{i // every:06d}.jpg"), frame)
        i += 1
    cap.release()


def contenders(video: Path, work: Path) -> list[tuple[str, list[str], Path]]:
    ff, py = ffmpeg_exe(), sys.executable
    v = str(video)

    def d(name: str) -> Path:
        return work / name

    return [
        ("vidsift frames --fps 1", [py, "-m", "vidsift.cli", "frames", v, "--out", str(d("v1")), "--fps", "1"],
         d("v1")),
        ("vidsift frames --fps 1 --strategy sequential",
         [py, "-m", "vidsift.cli", "frames", v, "--out", str(d("v1s")), "--fps", "1", "--strategy", "sequential"],
         d("v1s")),
        ("ffmpeg -i V -vf fps=1 out%d.jpg", [ff, "-v", "error", "-i", v, "-vf", "fps=1", str(d("f1") / "out%d.jpg")],
         d("f1")),
        ("vidsift frames --keyframes", [py, "-m", "vidsift.cli", "frames", v, "--out", str(d("vk")), "--keyframes"],
         d("vk")),
        ("ffmpeg -skip_frame nokey -i V -fps_mode vfr out%d.jpg",
         [ff, "-v", "error", "-skip_frame", "nokey", "-i", v, "-fps_mode", "vfr", str(d("fk") / "out%d.jpg")], d("fk")),
        ("opencv: read every frame, write every 30th",
         [py, "-m", "bench.bench_frames", "opencv", v, str(d("cv")), "30"], d("cv")),
    ]


def describe(video: Path) -> str:
    import av

    with av.open(str(video)) as c:
        s = c.streams.video[0]
        keys = sum(1 for e in s.index_entries if e.is_keyframe)
        dur = float(s.duration * s.time_base)
        return (f"{video.name}: {s.codec_context.width}x{s.codec_context.height} {s.codec_context.name} "
                f"{float(s.average_rate):.0f} fps, {dur:.0f} s, {keys} keyframes (every {dur / keys:.1f} s), "
                f"{video.stat().st_size / 1e6:.1f} MB")


def versions() -> str:
    import av

    first = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    lib = av.library_versions["libavcodec"]
    return f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, lib))}); CLI: {first[:60]}"


def main() -> None:
    from tqdm import tqdm

    rounds = int(os.environ.get("VIDSIFT_BENCH_ROUNDS", "3"))
    cache = cache_dir()
    video = clip_720p(cache)
    print(describe(video))
    print(versions())
    results: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="vidsift-bench-") as tmp:
        todo = contenders(video, Path(tmp))
        with tqdm(total=rounds * len(todo), desc="frames bench", unit="run", file=sys.stderr) as bar:
            for _ in range(rounds):  # interleaved, so a noisy minute hurts every contender alike
                for name, cmd, out in todo:
                    bar.set_postfix_str(name[:30])
                    results.setdefault(name, []).append(run_child(cmd, out))
                    bar.update()
    table = {name: sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2] for name, runs in results.items()}
    ff1 = table["ffmpeg -i V -vf fps=1 out%d.jpg"]
    print(f"\n{rounds} rounds, median by wall time; ratio = wall / ffmpeg fps=1 wall ({ff1.wall_s:.2f} s)")
    print(f"{'contender':<52} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'frames':>7} {'ratio':>6}")
    for name, r in table.items():
        spread = statistics.pstdev([x.wall_s for x in results[name]]) if len(results[name]) > 1 else 0.0
        status = "" if r.ok else f"  FAILED: {r.error.strip()[:80]}"
        print(f"{name:<52} {r.wall_s:>7.2f} {r.cpu_s:>7.2f} {r.peak_mb:>8.0f} {r.frames:>7} "
              f"{r.wall_s / ff1.wall_s:>5.2f}x  (±{spread:.2f}){status}")
    fps_ratio = table["vidsift frames --fps 1"].wall_s / ff1.wall_s
    key_speedup = ff1.wall_s / table["vidsift frames --keyframes"].wall_s
    print(f"\ngoal --fps 1 <= {GOAL_FPS_RATIO:.1f}x ffmpeg fps=1: {fps_ratio:.2f}x "
          f"{'met' if fps_ratio <= GOAL_FPS_RATIO else 'NOT met'}")
    print(f"goal keyframes >= {GOAL_KEYFRAME_SPEEDUP:.0f}x faster than ffmpeg fps=1: {key_speedup:.1f}x "
          f"{'met' if key_speedup >= GOAL_KEYFRAME_SPEEDUP else 'NOT met'}")
    if os.environ.get("VIDSIFT_BENCH_HOUR", "1") != "0":
        hour_memory(cache)


def hour_memory(cache: Path) -> None:
    """Peak memory of ``vidsift frames --fps 1`` over an hour of 1080p: streaming means it
    must not grow with the duration."""
    video = hour_1080p(cache)
    print(f"\n{describe(video)}")
    with tempfile.TemporaryDirectory(prefix="vidsift-bench-hour-") as tmp:
        out = Path(tmp) / "hour"
        print("vidsift frames --fps 1 on the hour (a few minutes) ...", flush=True)
        r = run_child([sys.executable, "-m", "vidsift.cli", "frames", str(video), "--out", str(out), "--fps", "1"],
                      out)
    print(f"{'vidsift frames --fps 1, 1 h 1080p':<52} {r.wall_s:>7.1f} {r.cpu_s:>7.1f} {r.peak_mb:>8.0f} "
          f"{r.frames:>7}" + ("" if r.ok else f"  FAILED: {r.error.strip()[:80]}"))
    print(f"goal peak < {GOAL_PEAK_MB:.0f} MB on an hour of 1080p: {r.peak_mb:.0f} MB "
          f"{'met' if r.ok and r.peak_mb < GOAL_PEAK_MB else 'NOT met'} "
          f"({r.wall_s / 60:.1f} min wall, {3600 / r.wall_s:.0f}x real time)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "opencv":
        opencv_loop(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
