"""The bad-input corpus (vidsift/testing/corpus.py) and two good videos in ONE `vidsift run`:
each bad input ends in exactly one clear error that names it, its message acknowledged (a bad
input is permanent: not retried, not in the DLQ, counted on its own metric), and everything
else (the good videos, the awkward-but-valid files) completes with the
right rows, whatever went wrong beside it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from vidsift import contract
from vidsift.local.runner import RunReport, VideoOutcome, run_videos
from vidsift.testing import corpus

#: The two good videos of conftest: frames at 1 fps, frames with a person (one face each).
GOOD = {"people clip.mp4": (6, 2), "short.mp4": (3, 3)}


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, corpus.Case]:
    return {c.name: c for c in corpus.build(tmp_path_factory.mktemp("corpus"))}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, cases: dict[str, corpus.Case], people_video: Path,
        short_video: Path) -> RunReport:
    paths = [people_video, *(c.path for c in cases.values()), short_video]
    return run_videos(paths, tmp_path_factory.mktemp("corpus-run"), progress=False, timeout_s=900)


def outcome(run: RunReport, name: str) -> VideoOutcome:
    found = [v for v in run.videos if v.path.name == name]
    assert len(found) == 1, name
    return found[0]


def uri(v: VideoOutcome) -> str:
    return f"s3://{contract.local_names().bucket('raw')}/{v.key}"


def rows_of(run: RunReport, table: str, v: VideoOutcome) -> list[dict]:
    return [r for r in getattr(run.results, table) if r["source_key"] == v.key]


def test_the_run_finished_and_every_error_belongs_to_an_input(run: RunReport) -> None:
    assert run.finished
    assert run.unowned_errors == []
    assert run.results.dlq == {}  # bad inputs are acknowledged; no frame of a good input failed further on


@pytest.mark.parametrize("name", [n for n in corpus.NAMES if n])
def test_each_input_ends_as_it_must(run: RunReport, cases: dict[str, corpus.Case], name: str) -> None:
    case, v = cases[name], outcome(run, name)
    people = rows_of(run, "people", v)
    assert len({r["record_id"] for r in people}) == len(people), "duplicate people rows"
    if case.ok:
        assert v.ok, v.errors
        assert v.frames_sampled == case.frames
        assert sorted(r["frame_index"] for r in people) == list(range(case.frames or 0))
        assert v.frames_with_people == case.person_frames
        # faces once per visit: each person followed is one track, whose face is found once
        assert v.faces == v.tracks and (v.tracks > 0) == (case.person_frames > 0)
        assert uri(v) not in run.results.dlq.get("split_frames", [])
        return
    # One clear error: one line on the video, one error record naming the object, no DLQ message.
    assert not v.ok
    assert len(v.errors) == 1, v.errors
    assert v.errors[0].startswith("split_frames: ") and case.words in v.errors[0], v.errors[0]
    records = [e for e in run.results.errors if e["subject"] == uri(v)]
    assert len(records) == 1
    assert records[0]["what"] == uri(v) and case.words in records[0]["reason"]
    assert uri(v) not in run.results.dlq.get("split_frames", [])
    if case.partial:  # the frames before the cut were sampled, recorded once each, and said so
        assert 0 < v.frames_sampled < corpus.BASE_FRAMES
        assert sorted(r["frame_index"] for r in people) == list(range(v.frames_sampled))
    else:
        assert people == [] and v.frames_sampled == 0


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_videos_beside_the_corpus_complete(run: RunReport, name: str) -> None:
    frames, with_people = GOOD[name]
    v = outcome(run, name)
    assert v.ok, v.errors
    assert (v.frames_sampled, v.frames_with_people) == (frames, with_people)
    assert v.faces == v.tracks and (v.tracks > 0) == (with_people > 0)  # a face once per visit
    people = rows_of(run, "people", v)
    assert sorted(r["frame_index"] for r in people) == list(range(frames))


def test_no_row_anywhere_is_duplicated(run: RunReport) -> None:
    for table in contract.TABLES:
        counts = Counter(r["record_id"] for r in getattr(run.results, table))
        assert [k for k, n in counts.items() if n > 1] == [], table


def test_a_bad_input_is_received_once_not_retried(run: RunReport, cases: dict[str, corpus.Case]) -> None:
    """Main retried each bad input 5 times (five downloads, then the DLQ and its alarm); now
    split_frames receives each message once and acknowledges it: every receive succeeded."""
    split = run.stats["split_frames"]
    assert split.failed == 0 and split.received == split.succeeded
    assert split.received - (len(cases) + len(GOOD)) in (0, 1)  # (and S3's test event, if not consumed yet)
