"""`make demo` is the README's first command: it must work on a fresh checkout and show rows
that are right for its video (people in the photos with people, none in the others)."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_demo_runs_and_every_frame_agrees_with_the_truth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from vidsift import demo
    from vidsift.samples import DEMO_SEGMENTS

    monkeypatch.chdir(tmp_path)  # demo-out/ is relative, as `make demo` runs it from the checkout
    assert demo.main() == 0
    out = capsys.readouterr().out
    seconds = int(sum(s.seconds for s in DEMO_SEGMENTS))
    assert f"{seconds} of {seconds} sampled frames agree with the truth of the video" in out
    assert "Estimated AWS cost" in out and (tmp_path / "demo-out" / "report.html").is_file()
    with_people = sum(int(s.seconds) for s in DEMO_SEGMENTS if s.has_people)
    assert f"DetectFaces on {with_people} of {seconds} sampled frames" in out
