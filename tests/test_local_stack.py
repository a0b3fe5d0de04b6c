"""Where the local stack's moto runs: in a process of its own by default, which lives exactly
as long as the stack (or its parent), and in the test's process when a test must change moto."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from vidsift import aws
from vidsift.local.moto_process import MotoProcess
from vidsift.local.stack import LocalStack


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def _gone(pid: int, within_s: float = 60.0) -> bool:
    """Whether process ``pid`` has ended (or is a zombie) by the deadline: a generous bound on
    an event, not a measured time."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in "ZX":
            return True
        time.sleep(0.05)
    return False


def test_moto_serves_from_its_own_process_until_the_stack_stops() -> None:
    with LocalStack(with_models=False) as stack:
        moto = stack._moto
        assert isinstance(moto, MotoProcess) and moto._proc is not None
        child = moto._proc
        assert child.pid != os.getpid()
        s3, bucket = aws.client("s3"), stack.names.bucket("frames")
        s3.put_object(Bucket=bucket, Key="x/1.jpg", Body=b"frame")
        assert s3.get_object(Bucket=bucket, Key="x/1.jpg")["Body"].read() == b"frame"
    # Ended and reaped by the stop (no port check: a parallel test may bind the freed port).
    assert child.returncode == 0


def test_a_new_stack_starts_empty() -> None:
    for _ in range(2):
        with LocalStack(with_models=False) as stack:
            s3, bucket = aws.client("s3"), stack.names.bucket("frames")
            assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
            s3.put_object(Bucket=bucket, Key="x/1.jpg", Body=b"frame")


def test_moto_ends_with_a_parent_that_dies_without_stopping_it() -> None:
    """A `vidsift run` killed outright (SIGKILL, the OOM killer) must not leave moto running:
    the child serves until its stdin, the parent's end of a pipe, closes."""
    code = ("from vidsift.local.moto_process import MotoProcess; import time;"
            "m = MotoProcess().start(); m.wait_ready(); print(m._proc.pid, m.port, flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child, port = map(int, parent.stdout.readline().split())
    assert not _refused(port)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    assert _gone(child)


def test_moto_in_this_process_for_tests_that_change_it() -> None:
    from moto.s3.models import s3_backends

    with LocalStack(with_models=False, moto_in_process=True) as stack:
        bucket = stack.names.bucket("frames")
        aws.client("s3").put_object(Bucket=bucket, Key="x/1.jpg", Body=b"frame")
        assert "x/1.jpg" in s3_backends[stack.names.account]["aws"].buckets[bucket].keys


def test_sqs_retention_check_reads_the_queue_period_and_answers_as_moto_does() -> None:
    """moto_process replaces moto's per-message retention check (which recounted the whole
    queue three times per message received) with one reading the queue's period: for a
    message within its retention and one past it, the same answers as moto's own."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import SQSBackend

    from vidsift.local import moto_process

    moto_process._quick_retention_check()
    original = moto_process.moto_retention_check
    backend = SQSBackend("us-east-1", "123456789012")
    backend.create_queue("retention-check", MessageRetentionPeriod="60")
    fresh = backend.send_message("retention-check", "fresh")
    expired = backend.send_message("retention-check", "expired")
    expired.sent_timestamp = int(unix_time_millis()) - 61_000  # sent 61 s ago: retention over
    moto_says = [original(backend, "retention-check", m) for m in (fresh, expired)]
    ours = [backend.is_message_valid_based_on_retention_period("retention-check", m) for m in (fresh, expired)]
    assert SQSBackend.is_message_valid_based_on_retention_period is not original
    assert moto_says == ours == [True, False]


def test_many_objects_in_one_request_are_the_bytes_getobject_reads() -> None:
    """The run's export reads the frames with people in one request (object_bodies_at_once), in
    moto's own process and in this one: the bytes, in the order asked, of the object's latest
    version (an overwrite wins, as for GetObject), empty objects included; a key that is gone
    raises instead of exporting a hole; a malformed request is refused."""
    import json
    import urllib.error
    import urllib.request

    import pytest

    from vidsift.local.moto_process import OBJECTS_PATH
    from vidsift.local.results import object_bodies_at_once

    for in_process in (False, True):
        with LocalStack(with_models=False, moto_in_process=in_process) as stack:
            s3 = aws.client("s3")
            for role in ("people", "raw"):  # raw is versioned: the latest version is read
                bucket = stack.names.bucket(role)
                bodies = {f"v/{i:06d}.jpg": bytes([i]) * (1000 * i) for i in range(5)}
                for key, body in bodies.items():
                    s3.put_object(Bucket=bucket, Key=key, Body=b"old" + body)
                    s3.put_object(Bucket=bucket, Key=key, Body=body)
                keys = sorted(bodies, reverse=True)
                got = object_bodies_at_once(stack.endpoint_url, bucket, keys)
                assert got == [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
                assert got == [bodies[k] for k in keys] and got[-1] == b""
                assert object_bodies_at_once(stack.endpoint_url, bucket, []) == []
                with pytest.raises(FileNotFoundError, match=r"v/missing\.jpg"):
                    object_bodies_at_once(stack.endpoint_url, bucket, [keys[0], "v/missing.jpg"])
            request = urllib.request.Request(stack.endpoint_url + OBJECTS_PATH, method="POST",
                                             data=json.dumps({"bucket": "no-such-bucket", "keys": []}).encode())
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 400


def test_queue_counts_in_one_request_are_what_getqueueattributes_counts() -> None:
    """The dispatcher asks how many messages each stage queue holds in one request
    (Dispatcher.queue_counts), in moto's own process and in this one: visible, in flight and
    delayed as GetQueueAttributes counts them, per stage; an unknown queue is refused."""
    import json
    import urllib.error
    import urllib.request

    import pytest

    from vidsift import contract
    from vidsift.local.dispatcher import Dispatcher
    from vidsift.local.moto_process import QUEUE_COUNTS_PATH

    names = ["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed",
             "ApproximateNumberOfMessages"]
    for in_process in (False, True):
        with LocalStack(with_models=False, moto_in_process=in_process) as stack:
            sqs, urls = aws.client("sqs"), stack.queue_urls
            dispatcher = Dispatcher(stack)
            stack.settle()  # S3's test events, sent when the notifications were configured
            assert dispatcher.queue_counts() == {s: (0, 0, 0) for s in contract.STAGES}
            for body in ("a", "b", "c"):
                sqs.send_message(QueueUrl=urls["detect_people"], MessageBody=body)
            assert sqs.receive_message(QueueUrl=urls["detect_people"], MaxNumberOfMessages=1,
                                       VisibilityTimeout=600)["Messages"]
            sqs.send_message(QueueUrl=urls["track_people"], MessageBody="later", DelaySeconds=600)
            counts = dispatcher.queue_counts()
            assert counts["detect_people"] == (1, 0, 2) and counts["track_people"] == (0, 1, 0)
            for stage, url in urls.items():
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
                assert counts[stage] == tuple(int(attrs[n]) for n in names)
            request = urllib.request.Request(stack.endpoint_url + QUEUE_COUNTS_PATH, method="POST",
                                             data=json.dumps({"urls": [urls["split_frames"] + "-nope"]}).encode())
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 400
