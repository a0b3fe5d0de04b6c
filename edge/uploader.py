"""Move queued clips into S3, confirmed and checksummed, through any outage.

The rules that make it durable:

* a clip leaves the queue (and a file the queue owns leaves the disk) only after S3 answered
  the PUT / CompleteMultipartUpload *and* what S3 reports it stored matches what was computed
  here: the SHA-256 checksum (sent with every request, so S3 itself rejects a corrupted body) and,
  with SSE-S3, the ETag, which S3 defines as the MD5 of the bytes (Content-MD5 is sent too);
* every failure (no network, 5xx, timeouts, bad credentials, a checksum mismatch) schedules a
  retry with exponential backoff and jitter; a clip is never given up on;
* large files go up in parts; the UploadId and each confirmed part are committed to the queue,
  and a restarted uploader asks S3 (ListParts) which parts it holds and sends only the rest;
* every request asks for server-side encryption (SSE-S3 AES256, or SSE-KMS with a key id).

Only three S3 actions are used, matching the device's IAM policy (see edge.policy):
PutObject (also covers Create/UploadPart/CompleteMultipartUpload), ListMultipartUploadParts
and AbortMultipartUpload.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from edge.config import EdgeConfig
from edge.queue import Clip, Part, UploadQueue, backoff_delay

log = logging.getLogger(__name__)


_NEEDS_AN_OPERATOR = {"AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                      "KMS.NotFoundException", "KMS.DisabledException", "InvalidArgument"}


class ChecksumMismatch(Exception):
    """S3 stored bytes whose SHA-256 is not the one we sent: the transfer was corrupted."""


def b64_sha256(data: bytes) -> str:
    """SHA-256 as S3's ChecksumSHA256 wants it (base64), so S3 verifies each part on arrival."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _etag_is_md5(sse: str | None) -> bool:
    """S3 documents that the ETag of an object (or part) stored unencrypted or with SSE-S3 is the
    MD5 of its bytes; with SSE-KMS it is not, and then only the SHA-256 checksum can tell.
    ``sse``: what S3 answered it stored (its ServerSideEncryption header)."""
    return sse == "AES256"


def stored_sse(resp: dict[str, Any], requested: str) -> str | None:
    """The encryption S3 applied: its answer's header; what was asked for if it sent none."""
    return resp.get("ServerSideEncryption") or (None if requested == "bucket" else requested)


def check_etag(etag: str | None, md5_hex: str, sse: str | None, what: str) -> None:
    """Refuse an upload whose ETag is not the MD5 sent (where the ETag is an MD5: SSE-S3 or none):
    a second check that S3 stored the bytes the device has."""
    if etag is not None and _etag_is_md5(sse) and etag.strip('"') != md5_hex:
        raise ChecksumMismatch(f"{what}: S3 stored MD5 {etag.strip(chr(34))}, sent {md5_hex}")


def composite_md5(part_etags: list[str]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the concatenated part MD5s, then -<parts>."""
    joined = b"".join(bytes.fromhex(e.strip('"')) for e in part_etags)
    return f"{hashlib.md5(joined).hexdigest()}-{len(part_etags)}"


def composite_sha256(part_checksums: list[str]) -> str:
    """S3's checksum of a multipart object: SHA-256 of the concatenated part digests."""
    joined = b"".join(base64.b64decode(c) for c in part_checksums)
    return f"{b64_sha256(joined)}-{len(part_checksums)}"


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def make_client(cfg: EdgeConfig) -> Any:
    """An S3 client from the standard credential chain; AWS_ENDPOINT_URL(_S3) is honoured by boto3
    itself. Short timeouts and few internal retries: the queue's backoff does the waiting."""
    session = boto3.session.Session(region_name=cfg.region) if cfg.region else boto3.session.Session()
    return session.client(
        "s3",
        config=BotoConfig(
            connect_timeout=cfg.connect_timeout_s,
            read_timeout=cfg.read_timeout_s,
            retries={"max_attempts": cfg.s3_max_attempts, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


class UploaderLock:
    """One uploader per state dir (an flock, released by the kernel if the process dies), so a
    `vidsift-edge upload` run beside the service only queues and leaves uploading to the service."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "uploader.lock"
        self._fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        """Take the state folder's uploader lock (flock), so two uploaders on one device never send the
        same clip; False when another holds it and ``blocking`` is False."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Release the lock, so another uploader (the next run) may take over."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Uploader:
    """Drains an UploadQueue into the raw bucket: run() in a thread until stopped, or
    run(until_empty=True) to finish what is queued and return."""

    def __init__(self, queue: UploadQueue, cfg: EdgeConfig, client: Any | None = None,
                 stop: threading.Event | None = None) -> None:
        self.queue = queue
        self.cfg = cfg
        self.bucket = cfg.raw_bucket()
        self.s3 = client or make_client(cfg)
        self.stop = stop or threading.Event()
        self.consecutive_failures = 0
        #: The encryption S3 last said it applied (sse = "bucket": the bucket's default, one
        #: setting per bucket), for an answer without the header (some S3 stand-ins omit it on parts).
        self._seen_sse: str | None = None

    # -- the loop ----------------------------------------------------------------------------
    def run(self, until_empty: bool = False, deadline: float | None = None) -> bool:
        """Upload until stopped (or, with until_empty, until nothing is pending). Returns True if
        the queue was emptied."""
        self.queue.recover()
        self._abort_orphans()
        while not self.stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            clip = self.queue.next_due()
            if clip is None:
                wait = self.queue.seconds_until_due()
                if wait is None and until_empty:
                    return True
                wait = self.cfg.poll_s if wait is None else min(wait, self.cfg.poll_s * 5)
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - time.monotonic()))
                self.queue.wakeup.wait(max(wait, 0.01))
                self.queue.wakeup.clear()
                continue
            if self.upload_one(clip):
                self.consecutive_failures = 0
                self._abort_orphans()  # S3 is reachable now: a dropped clip's parts need not wait for a restart
            else:
                # Pause the whole loop too: an outage fails every clip, and trying each one in turn
                # at full speed would hammer a network that is down.
                self.consecutive_failures += 1
                self.stop.wait(backoff_delay(self.consecutive_failures, self.cfg.backoff_base_s,
                                             self.cfg.backoff_max_s))
        return False

    def upload_one(self, clip: Clip) -> bool:
        """One attempt at one clip; every outcome is recorded in the queue."""
        try:
            if not clip.path.exists():
                raise FileNotFoundError(clip.path)
            if clip.size >= self.cfg.multipart_threshold_bytes:
                etag, checksum = self._upload_multipart(clip)
            else:
                etag, checksum = self._put(clip)
        except FileNotFoundError:
            log.error("%s: local file %s disappeared before upload; nothing left to send", clip.key, clip.path)
            self.queue.mark_missing(clip, "local file disappeared")
            return True
        except _Stopped:
            self.queue.release(clip)
            return True
        except (BotoCoreError, ClientError, OSError, ChecksumMismatch) as exc:
            delay = backoff_delay(clip.attempts + 1, self.cfg.backoff_base_s, self.cfg.backoff_max_s)
            attempts = self.queue.mark_failed(clip, f"{type(exc).__name__}: {exc}", delay)
            # Still retried (the operator may fix the bucket or the role), but said louder: these
            # do not go away by waiting.
            level = logging.ERROR if _error_code(exc) in _NEEDS_AN_OPERATOR else logging.WARNING
            log.log(level, "upload of %s failed (attempt %d): %s: %s; retrying in %.1f s", clip.key, attempts,
                    type(exc).__name__, exc, delay)
            return False
        self.queue.mark_done(clip, etag, checksum)
        log.info("uploaded %s -> s3://%s/%s (%d bytes, checksum confirmed)", clip.path.name, self.bucket, clip.key,
                 clip.size)
        return True

    # -- single PUT --------------------------------------------------------------------------
    def _sse_of(self, resp: dict[str, Any]) -> str | None:
        sse = stored_sse(resp, self.cfg.sse) or self._seen_sse
        self._seen_sse = sse
        return sse

    def _sse(self) -> dict[str, str]:
        if self.cfg.sse == "bucket":  # the bucket's default encryption applies (kms=true: the stack's key)
            return {}
        args = {"ServerSideEncryption": self.cfg.sse}
        if self.cfg.sse == "aws:kms" and self.cfg.kms_key_id:
            args["SSEKMSKeyId"] = self.cfg.kms_key_id
        return args

    def _put(self, clip: Clip) -> tuple[str | None, str]:
        data = clip.path.read_bytes()
        checksum = b64_sha256(data)
        md5 = hashlib.md5(data)
        if hashlib.sha256(data).hexdigest() != clip.sha256:
            log.warning("%s changed on disk since it was queued; uploading what is there now", clip.path)
        # S3 rejects the PUT (BadDigest) if the bytes it received do not match either digest.
        resp = self.s3.put_object(
            Bucket=self.bucket, Key=clip.key, Body=data, ContentType=clip.content_type, Metadata=clip.metadata,
            ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum, ContentMD5=base64.b64encode(md5.digest()).decode(),
            **self._sse(),
        )
        # ...and we check what it says it stored, in case something on the way did not.
        returned = resp.get("ChecksumSHA256")
        if returned is not None and returned != checksum:
            raise ChecksumMismatch(f"S3 stored sha256 {returned}, sent {checksum}")
        check_etag(resp.get("ETag"), md5.hexdigest(), self._sse_of(resp), clip.key)
        return resp.get("ETag"), returned or checksum

    # -- multipart ---------------------------------------------------------------------------
    def _upload_multipart(self, clip: Clip) -> tuple[str | None, str]:
        part_size = clip.part_size or self.cfg.part_size_bytes
        upload_id = clip.upload_id
        confirmed: dict[int, Part] = {}
        if upload_id:
            confirmed = self._resume(clip, upload_id)
            if confirmed is None:
                upload_id = None
                confirmed = {}
        if not upload_id:
            resp = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=clip.key, ContentType=clip.content_type, Metadata=clip.metadata,
                ChecksumAlgorithm="SHA256", **self._sse(),
            )
            upload_id = resp["UploadId"]
            self.queue.set_upload(clip, upload_id, part_size)
            log.info("%s: started multipart upload (%d parts of %d bytes)", clip.key,
                     math.ceil(clip.size / part_size), part_size)
        n_parts = math.ceil(clip.size / part_size)
        parts: list[Part] = []
        with open(clip.path, "rb") as f:
            for number in range(1, n_parts + 1):
                if self.stop.is_set():
                    raise _Stopped()
                self._send_urgent(clip)
                if number in confirmed:
                    parts.append(confirmed[number])
                    continue
                f.seek((number - 1) * part_size)
                data = f.read(part_size)
                checksum = b64_sha256(data)
                md5 = hashlib.md5(data)
                try:
                    resp = self.s3.upload_part(
                        Bucket=self.bucket, Key=clip.key, UploadId=upload_id, PartNumber=number, Body=data,
                        ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum,
                        ContentMD5=base64.b64encode(md5.digest()).decode(),
                    )
                except ClientError as exc:
                    if _error_code(exc) == "NoSuchUpload":
                        self.queue.set_upload(clip, None, None)
                    raise
                returned = resp.get("ChecksumSHA256")
                if returned is not None and returned != checksum:
                    raise ChecksumMismatch(f"part {number}: S3 stored sha256 {returned}, sent {checksum}")
                check_etag(resp.get("ETag"), md5.hexdigest(), self._sse_of(resp), f"{clip.key} part {number}")
                part = Part(number, resp["ETag"], checksum, len(data))
                self.queue.add_part(clip, part)
                parts.append(part)
                log.debug("%s: part %d/%d confirmed", clip.key, number, n_parts)
        try:
            resp = self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=clip.key, UploadId=upload_id,
                MultipartUpload={"Parts": [
                    {"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": p.checksum} for p in parts
                ]},
            )
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchUpload", "InvalidPart", "InvalidPartOrder"):
                # The upload is gone or inconsistent: start over on the next attempt (same key).
                self.queue.set_upload(clip, None, None)
            raise
        expected = composite_sha256([p.checksum for p in parts if p.checksum])
        returned = resp.get("ChecksumSHA256")
        if returned is not None and returned.split("-")[0] != expected.split("-")[0]:
            self.queue.set_upload(clip, None, None)
            raise ChecksumMismatch(f"S3 stored composite sha256 {returned}, expected {expected}")
        etag, want = resp.get("ETag"), composite_md5([p.etag for p in parts])
        if etag is not None and _etag_is_md5(self._sse_of(resp)) and etag.strip('"') != want:
            self.queue.set_upload(clip, None, None)
            raise ChecksumMismatch(f"S3 stored multipart ETag {etag}, expected {want}")
        return resp.get("ETag"), returned or expected

    def _send_urgent(self, current: Clip) -> None:
        """A snapshot is the alert fast lane: one queued while a long clip is on its way goes
        between two of the clip's parts, not minutes later after the whole clip."""
        while (urgent := self.queue.next_due(min_priority=current.priority + 1)) is not None:
            self.queue.renew_lease(current.id)
            self.upload_one(urgent)

    def _resume(self, clip: Clip, upload_id: str) -> dict[int, Part] | None:
        """Which parts of an interrupted upload S3 really holds. Only parts that S3 lists *and* that
        we confirmed (same ETag and size) are kept; anything else is sent again. None: the upload
        no longer exists (completed, aborted or expired) and must be started anew."""
        try:
            listed: dict[int, dict[str, Any]] = {}
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": clip.key, "UploadId": upload_id}
            while True:
                resp = self.s3.list_parts(**kwargs)
                for p in resp.get("Parts", []):
                    listed[p["PartNumber"]] = p
                if not resp.get("IsTruncated"):
                    break
                kwargs["PartNumberMarker"] = resp["NextPartNumberMarker"]
        except ClientError as exc:
            if _error_code(exc) == "NoSuchUpload":
                log.info("%s: multipart upload %s no longer exists; starting again", clip.key, upload_id[:12])
                self.queue.set_upload(clip, None, None)
                return None
            raise
        ours = self.queue.parts(clip.id)
        kept = {
            n: p for n, p in ours.items()
            if n in listed and listed[n]["ETag"] == p.etag and listed[n]["Size"] == p.size
            and listed[n].get("ChecksumSHA256") in (None, p.checksum)
        }
        log.info("%s: resuming multipart upload %s: S3 holds %d confirmed part(s)", clip.key, upload_id[:12],
                 len(kept))
        return kept

    def _abort_orphans(self) -> None:
        """Abort multipart uploads of clips the disk cap dropped, so S3 does not keep their parts."""
        for clip in self.queue.orphaned_uploads():
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=clip.key, UploadId=clip.upload_id)
            except ClientError as exc:
                if _error_code(exc) not in ("NoSuchUpload",):
                    log.warning("could not abort the upload of dropped clip %s: %s", clip.key, exc)
                    continue
            except BotoCoreError as exc:
                log.warning("could not abort the upload of dropped clip %s: %s", clip.key, exc)
                continue
            self.queue.clear_upload(clip.id)
            log.info("aborted the multipart upload of dropped clip %s", clip.key)


class _Stopped(Exception):
    """Raised between parts when the uploader is asked to stop; the upload resumes next start."""
