"""The device's least-privilege IAM policy.

A camera box sits in a shop or a hallway: assume it will be stolen and its credentials read.
With this policy the thief can add objects under uploads/ of one bucket and nothing more: not
read a clip back, not list the bucket, not delete anything. PutObject could overwrite a key, but
keys are random UUIDs and cannot be listed, so existing clips cannot be found. The three actions
are exactly what edge.uploader calls:

* s3:PutObject: PutObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload
* s3:ListMultipartUploadParts: ListParts, to resume a multipart upload after a restart
* s3:AbortMultipartUpload: to clean up the parts of a clip the disk cap dropped

SSE-KMS with a customer-managed key needs kms:GenerateDataKey and kms:Decrypt (the latter for
multipart uploads) on that key; they are added only when a key ARN is given.
"""

from __future__ import annotations

import json
from typing import Any

from vidsift.contract import load as load_contract


def device_policy(bucket: str, kms_key_arn: str | None = None) -> dict[str, Any]:
    """The IAM policy a device needs and no more: put (and resume multipart uploads) under the raw
    prefix, and use the KMS key when the bucket has one, so stolen device credentials can only upload."""
    prefix = load_contract()["raw_upload_prefix"]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "VidsiftEdgeUploadClips",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
        }
    ]
    if kms_key_arn:
        statements.append({
            "Sid": "VidsiftEdgeEncryptWithKmsKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": kms_key_arn,
        })
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(bucket: str, kms_key_arn: str | None = None) -> str:
    """The device policy as JSON, ready for ``aws iam put-user-policy``."""
    return json.dumps(device_policy(bucket, kms_key_arn), indent=2)
