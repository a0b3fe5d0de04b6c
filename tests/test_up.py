"""``vidsift up``: a user drops a video in with a plain S3 client and sees it processed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3

from vidsift.local.stack import free_port


def test_drop_a_video_into_a_running_stack(tmp_path: Path, short_video: Path) -> None:
    port = free_port()
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen([sys.executable, "-m", "vidsift.cli", "up", "--port", str(port), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        # keep reading in the background so the child never blocks on a full pipe
        threading.Thread(target=lambda: [lines.append(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        text = "".join(lines)
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in text, text
        raw = re.search(r"raw\s+(\S+)", text).group(1)  # type: ignore[union-attr]
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="any", aws_secret_access_key="any")
        s3.upload_file(str(short_video), raw, "uploads/dropped in.mp4")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not list(out.glob("analytics/people/dt=*/*.json")):
            time.sleep(1)
        rows = [line for f in out.glob("analytics/people/dt=*/*.json") for line in f.read_text().splitlines()]
        assert len(rows) == 3  # a 3-second clip at 1 frame/s
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
