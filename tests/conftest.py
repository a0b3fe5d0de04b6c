"""Shared fixtures: a real local AWS (moto's server over HTTP) and sample media made from
photos that ship inside installed packages."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Libraries that write under $HOME (onnxruntime, TFLite, Ultralytics) get a scratch one.
_HOME = tempfile.mkdtemp(prefix="vidsift-test-home-")
os.environ["HOME"] = _HOME
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(_HOME, "yolo"))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
# Tests purge the local stack's queues between them (LocalStack.settle); SQS allows one purge
# a minute, which moto enforces unless told otherwise.
os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"


@pytest.fixture(autouse=True)
def _settled_stack() -> Iterator[None]:
    """No test sees another's messages, dead letters or injected faults: whatever a test left
    in a shared local stack's queues (in flight included) is dropped when it ends, and that
    the queues are then empty is checked. Rows and objects stay; tests keep them apart by
    their own video ids and keys."""
    yield
    from vidsift.local.stack import LocalStack

    stack = LocalStack.running
    if stack is not None:
        stack.settle()
        left = {url: n for url, n in stack.queued().items() if n}
        assert not left, f"messages left after purging the local stack's queues: {left}"


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def people_video(media_dir: Path) -> Path:
    """6 s: 2 s without people, 2 s with, 2 s without (320x240, 10 fps)."""
    from vidsift.testing.samples import Segment, make_video

    return make_video(media_dir / "people clip.mp4", [Segment("coffee", 2), Segment("astronaut", 2),
                                                       Segment("chelsea", 2)], fps=10, width=320, height=240)


@pytest.fixture(scope="session")
def short_video(media_dir: Path) -> Path:
    from vidsift.testing.samples import Segment, make_video

    return make_video(media_dir / "short.mp4", [Segment("grace_hopper", 3)], fps=10, width=320, height=240)


@pytest.fixture(scope="module")
def local_stack() -> Iterator[object]:
    """An embedded local AWS with the real model services, shared by a module's tests (which
    use their own object keys). Module scope: stacks set process-wide endpoint variables,
    so two must never be up at once."""
    from vidsift.local.stack import LocalStack

    with LocalStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def ssdlite_pbtxt() -> Path:
    """The SSDLite text graph (not committed: sagemaker/code/make_pbtxt.py generates it once per
    machine into the cache), for the edge's detector, which a device's config hands it."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "vidsift_make_pbtxt", Path(__file__).resolve().parents[1] / "sagemaker" / "code" / "make_pbtxt.py")
    assert spec and spec.loader
    make = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = make  # its dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(make)
    return Path(make.cached())
