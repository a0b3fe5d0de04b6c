"""The vidsift command in a shell pipeline, through its real entry point (the console script
in the venv, no terminal on either stream): data on stdout, nothing else there, and no
terminal escape codes anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

VIDSIFT = str(Path(sys.executable).with_name("vidsift"))
ESC = "\x1b"


def vidsift(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Both streams are pipes, as in `vidsift ... | tail` with stderr captured too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    return subprocess.run([VIDSIFT, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                          timeout=timeout, check=False)


def test_csv_ends_with_exactly_one_newline(tmp_path: Path) -> None:
    sql = "SELECT * FROM (VALUES (1, 'a b'), (2, NULL)) AS t(n, s) ORDER BY n"
    proc = vidsift("query", "--out", str(tmp_path), "--format", "csv", sql)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "n,s\n1,a b\n2,\n"
    assert proc.stdout.splitlines()[-1] == "2,"  # what `| tail -n 1` gives
    for fmt in ("table", "json"):
        out = vidsift("query", "--out", str(tmp_path), "--format", fmt, sql).stdout
        assert out.endswith("\n") and not out.endswith("\n\n")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, short_video: Path, people_video: Path
         ) -> dict[str, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("pipe")
    videos = [str(short_video), str(people_video)]
    return {"quiet": vidsift("run", *videos, "--out", str(out / "quiet"), "--quiet"),
            "piped": vidsift("run", *videos, "--out", str(out / "piped"))}


def test_quiet_prints_the_summary_table_and_no_log_lines(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    proc = runs["quiet"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[1].split()[:2] == ["video", "status"]
    assert [line[41:].split()[0] for line in lines[2:4]] == ["ok", "ok"]  # after the 40-wide name column
    assert not [line for line in lines if " INFO " in line or "botocore" in line or "vidsift.inference" in line]
    assert ESC not in proc.stdout


def test_into_a_pipe_each_video_gets_one_plain_line_instead_of_bars(
        runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    proc = runs["piped"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ESC not in proc.stdout and ESC not in proc.stderr and "\r" not in proc.stderr
    done = [line for line in proc.stdout.splitlines() if ": done:" in line]
    assert sorted(line.split(":")[0] for line in done) == ["people clip.mp4", "short.mp4"]
    assert "people clip.mp4: done: 6 of 6 frames analysed" in done
    # Logs go to stderr (readable lines), never into the data on stdout.
    assert " INFO " in proc.stderr and " INFO " not in proc.stdout
    assert "botocore" not in proc.stderr  # library chatter only with -v


def test_the_command_leaves_without_teardown_but_loses_no_output(tmp_path: Path) -> None:
    """The entry point ends with os._exit (no interpreter teardown): everything main printed
    must still arrive, however much of it is buffered for a pipe."""
    sql = "SELECT i, repeat('x', 50) AS pad FROM range(20000) AS t(i)"
    proc = vidsift("query", "--out", str(tmp_path), "--format", "csv", sql)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 20001 and lines[-1] == "19999," + "x" * 50


def test_the_command_keeps_its_exit_codes_and_messages(tmp_path: Path) -> None:
    missing = vidsift("run", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "out"))
    assert missing.returncode == 2 and "vidsift: no such file:" in missing.stderr
    bad_fps = vidsift("frames", str(tmp_path / "x.mp4"), "--out", str(tmp_path / "f"), "--fps", "0")
    assert bad_fps.returncode == 1 and "vidsift: --fps must be positive, got 0.0" in bad_fps.stderr
    usage = vidsift("run")
    assert usage.returncode == 2 and "usage: vidsift run" in usage.stderr
    helped = vidsift("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: vidsift")
