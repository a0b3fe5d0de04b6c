"""`make demo` is the README's first command: it must work on a fresh checkout and show rows
that are right for its video (people in the photos with people, none in the others)."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_demo_runs_and_every_frame_agrees_with_the_truth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from vidsift.cli import demo
    from vidsift.testing.samples import DEMO_SEGMENTS

    monkeypatch.chdir(tmp_path)  # demo-out/ is relative, as `make demo` runs it from the checkout
    assert demo.main() == 0
    out = capsys.readouterr().out
    seconds = int(sum(s.seconds for s in DEMO_SEGMENTS))
    assert f"{seconds} of {seconds} sampled frames agree with the truth of the video" in out
    assert "Estimated AWS cost" in out and (tmp_path / "demo-out" / "report.html").is_file()
    import json

    run = json.loads((tmp_path / "demo-out" / "run.json").read_text())
    calls = sum(v["detect_faces_calls"] for v in run["videos"])
    with_people = sum(int(s.seconds) for s in DEMO_SEGMENTS if s.has_people)
    assert 0 < calls < with_people  # faces once per visit, not on every frame with people
    # Three photos with people, three people: told apart by their colours, though each fills
    # the frame where the one before did (boxes alone would make them one visit).
    assert [v["tracks"] for v in run["videos"]] == [sum(1 for s in DEMO_SEGMENTS if s.has_people)]
    assert f"DetectFaces on {calls} of {seconds} sampled frames" in out
    assert run["cost"]["usd"] > 0 and run["cost"]["video_minutes"] == pytest.approx(seconds / 60, rel=0.05)
