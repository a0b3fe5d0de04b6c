"""Shared fixtures: a real local AWS (moto's server over HTTP) and sample media made from
photos that ship inside installed packages."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server of this test module's own (over HTTP, as the stages reach AWS): no other
    module sees its tables, topics or objects."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def fresh_moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Call it to empty the module's moto server and point every client at it with test
    credentials (plus the variables given), no service-specific endpoint or profile left over
    from elsewhere; it returns the server's URL."""
    import urllib.request

    from vidsift import aws

    def reset(**env: str) -> str:
        urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).read()
        for key, value in {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_REGION": "us-east-1", **env}.items():
            monkeypatch.setenv(key, value)
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", *(k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_"))):
            monkeypatch.delenv(key, raising=False)
        aws.reset_clients()
        return moto_url

    return reset


@pytest.fixture(scope="module")
def ssdlite_alone() -> Iterator[None]:
    """For tests about SSDLite and its runtime (its id, its boxes): without CenterNet's second
    opinion, on by default since PERSON_COMPLEMENT (tests/test_person_complement.py tests that).
    A module asks for it with ``pytestmark = pytest.mark.usefixtures("ssdlite_alone")``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PERSON_COMPLEMENT", "off")
        yield
