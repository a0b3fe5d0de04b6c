"""The embedded local AWS: the same topology as serverless.yml, on this machine.

moto's server provides S3, SQS, Firehose and DynamoDB over real HTTP, in a process of its
own (vidsift.local.moto_process says why); our emulators provide SageMaker-runtime
InvokeEndpoint and Rekognition DetectFaces with real offline models. The handlers are the
deployed code unchanged: only boto3 endpoints differ, set here through the standard
``AWS_ENDPOINT_URL*`` variables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from vidsift import aws, contract
from vidsift.contract import ResourceNames, local_names
from vidsift.local.moto_process import MotoProcess, thread_server_class

#: Locally a failed message comes back after this many seconds (AWS: 6x the timeout).
LOCAL_VISIBILITY_TIMEOUT_S = 1
#: REKOGNITION_TPS of the local stack: far above what the local analyser can do.
LOCAL_REKOGNITION_TPS = "10000"
REGION = "us-east-1"


def _quietly(stop: Any) -> None:
    with contextlib.suppress(Exception):
        stop()


def free_port() -> int:
    """A port free right now (racy: prefer binding port 0); for a service that must be told its port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalStack:
    """The whole stack on this machine, with the same names, queues, notifications and tables as
    serverless.yml declares: moto for S3/SQS/Firehose/DynamoDB and our own SageMaker runtime and
    Rekognition, so the handlers run unchanged offline (``vidsift run``, the tests, the demo).
    A context manager: it owns its processes and ports and stops them on exit."""

    port: int = 0
    detector: str = "auto"
    sample_fps: float = 1.0
    sample_mode: str = "fps"
    names: ResourceNames = field(default_factory=local_names)
    visibility_timeout_s: int = LOCAL_VISIBILITY_TIMEOUT_S
    #: Without the model services (tests of the first stage need no detector).
    with_models: bool = True
    #: moto's server in this process instead of its own, for a test that changes moto itself.
    moto_in_process: bool = False
    #: Visitors on (opt-in): their state is loaded from and kept in this folder (a run's --out),
    #: so that a visitor is recognised across runs (vidsift.local.visitors).
    visitors_out: Path | None = None
    _moto: Any = None
    _services: list[Any] = field(default_factory=list)
    _saved_env: dict[str, str | None] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)
    dlq_urls: dict[str, str] = field(default_factory=dict)
    sagemaker_url: str | None = None
    rekognition_url: str | None = None
    #: The model services (with their fault switches, for resilience tests).
    sagemaker: Any = None
    rekognition: Any = None
    #: Alerts: the SNS topic, and the SQS queue subscribed to it so alerts can be seen locally.
    alert_topic_arn: str | None = None
    alert_queue_url: str | None = None
    #: The stack up in this process, if any: stacks set process-wide endpoint variables, so
    #: there is at most one (tests settle it between them).
    running: ClassVar[LocalStack | None] = None

    @property
    def endpoint_url(self) -> str:
        """moto's URL, which every AWS client of the process is pointed at (AWS_ENDPOINT_URL)."""
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start moto and the model services and create every resource serverless.yml declares, then
        point this process's AWS clients and the handlers' environment at them."""
        # moto's server logs every request; a person watching a run wants the pipeline's lines.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Port 0: the kernel picks a free port as the server binds it, so two stacks started at
        # once (parallel test workers, a second `vidsift run`) can never be handed the same one.
        if self.moto_in_process:
            self._moto = thread_server_class()(ip_address="127.0.0.1", port=self.port, verbose=False)
            self._moto.start()
            self.port = int(self._moto.get_host_and_port()[1])
        else:
            self._moto = MotoProcess(self.port).start()
            self.port = self._moto.port
        self._set_env({
            "AWS_ACCESS_KEY_ID": "vidsift-local", "AWS_SECRET_ACCESS_KEY": "vidsift-local",
            "AWS_SESSION_TOKEN": None, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": self.endpoint_url,
        })
        if self.moto_in_process:  # moto keeps its state per process: a new stack starts empty
            self._reset_moto()
        aws.reset_clients()
        if self.with_models:  # while moto's own process starts
            self._start_model_services()
        if not self.moto_in_process:
            self._moto.wait_ready()
        self._set_env(self.function_env())
        aws.reset_clients()
        self._create_resources()
        self._create_alert_resources()
        # As serverless.yml sets it: split_frames sends a long video's segments to its own queue.
        self._set_env({"SPLIT_QUEUE_URL": self.queue_urls["split_frames"],
                       "TRACK_QUEUE_URL": self.queue_urls["track_people"],
                       "FACES_QUEUE_URL": self.queue_urls["analyze_faces"]})
        LocalStack.running = self
        return self

    def stop(self) -> None:
        """Stop every service and restore the environment the stack changed, so a later stack (or the
        next test) starts from nothing."""
        if LocalStack.running is self:
            LocalStack.running = None
        stops = [svc.stop for svc in self._services]
        if self._moto is not None:
            if self.moto_in_process:
                with contextlib.suppress(Exception):
                    self._reset_moto()
            stops.append(self._moto.stop)
        # At once: each server waits for its loop's next poll (moto's every 0.5 s).
        threads = [threading.Thread(target=_quietly, args=(stop,), name="stack-stop") for stop in stops]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._services.clear()
        self._moto = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        aws.reset_clients()

    def settle(self) -> None:
        """Forget every message and injected fault, keeping buckets, rows and tables.

        Tests sharing one stack call this between them, so a message one test left in a queue,
        in flight or in a DLQ is never handled, counted or drained by the next, and a fault
        injected into a model service never outlives its test. PurgeQueue drops in-flight
        messages too (moto's 60 s limit between purges is switched off by the tests).
        """
        sqs = aws.client("sqs")
        urls = [*self.queue_urls.values(), *self.dlq_urls.values()]
        if self.alert_queue_url:
            urls.append(self.alert_queue_url)
        for url in urls:
            sqs.purge_queue(QueueUrl=url)
        for svc in (self.sagemaker, self.rekognition):
            if svc is not None:
                (svc.faults.clear if hasattr(svc, "faults") else svc.clear_faults)()

    def queued(self) -> dict[str, int]:
        """Messages in each queue (stage, DLQ and alert subscriber), visible or not, by URL."""
        sqs = aws.client("sqs")
        urls = [*self.queue_urls.values(), *self.dlq_urls.values(), *filter(None, [self.alert_queue_url])]
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        return {url: sum(int(v) for v in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
                         ["Attributes"].values()) for url in urls}

    def _reset_moto(self) -> None:
        """moto keeps its state per process, not per server: a stack in this process starts empty."""
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"),
                               timeout=10).read()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_env(self, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _start_model_services(self) -> None:
        """Person detection and face analysis with real offline models."""
        from vidsift.local import rekognition, sagemaker_runtime

        sm = sagemaker_runtime.serve(endpoint_name=self.names.endpoint, s3_endpoint_url=self.endpoint_url,
                                     backend=self.detector)
        self._services.append(sm)
        # The face models load while the stack creates its resources and the first stages run.
        state = None
        if self.visitors_out is not None:
            from vidsift.local import visitors

            state = visitors.collection_file(self.visitors_out)
        rk = rekognition.serve(s3_endpoint_url=self.endpoint_url, background=True, state_file=state)
        self._services.append(rk)
        self.sagemaker, self.rekognition = sm, rk
        self.sagemaker_url, self.rekognition_url = sm.url, rk.url

    # --- what the handlers and users see ----------------------------------------------

    def function_env(self) -> dict[str, str | None]:
        """The handlers' environment on this stack: the names serverless.yml gives the functions, plus
        the local endpoints and settings; the one difference from the cloud is where the endpoints are."""
        env: dict[str, str | None] = dict(self.names.function_env())
        env.update({
            "SAMPLE_FPS": str(self.sample_fps), "SAMPLE_MODE": self.sample_mode,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.sagemaker_url,
            "AWS_ENDPOINT_URL_REKOGNITION": self.rekognition_url,
            "POWERTOOLS_SERVICE_NAME": "vidsift", "POWERTOOLS_IDEMPOTENCY_DISABLED": None,
            # The local face analyser has no quota: rekognitionTps limits the cloud's calls only,
            # unless the user sets it to try the limit locally.
            "REKOGNITION_TPS": os.environ.get("REKOGNITION_TPS") or LOCAL_REKOGNITION_TPS,
        })
        env.update(self.alert_env())
        if self.visitors_out is not None:
            from vidsift.local import visitors

            env.update(visitors.stack_env(self.names))
        return env

    def alert_env(self) -> dict[str, str | None]:
        """Known faces and alerts, as serverless.yml sets them (the rules stay the user's:
        ALERT_RULES, ALERT_TIMEZONE and ALERT_LINK_EXPIRY_S are read from the environment)."""
        from vidsift.core import alerts, matching

        return {
            # Searching needs the local Rekognition's face models.
            "FACE_COLLECTION": matching.collection_name(self.names) if self.with_models else None,
            "ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:{self.names.account}:{alerts.topic_name(self.names)}",
            "ALERT_TABLE": alerts.table_name(self.names),
        }

    def user_env(self) -> dict[str, str]:
        """What a user exports to reach this stack with the AWS CLI or boto3."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.sagemaker_url or "",
            "AWS_ENDPOINT_URL_REKOGNITION": self.rekognition_url or "",
            "AWS_ACCESS_KEY_ID": "vidsift-local", "AWS_SECRET_ACCESS_KEY": "vidsift-local",
            "AWS_REGION": REGION,
        }

    # --- resources, as serverless.yml declares them -------------------------------------

    def _create_resources(self) -> None:
        s3, sqs = aws.client("s3"), aws.client("sqs")
        for role in contract.load()["buckets"]:
            bucket = self.names.bucket(role)
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})
            if role == "raw":  # footage cannot be recorded again: an overwrite keeps the old version
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for stage in contract.STAGES:
            spec = contract.stage(stage)
            dlq = sqs.create_queue(QueueName=self.names.dlq(stage))["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            url = sqs.create_queue(QueueName=self.names.queue(stage), Attributes={
                "VisibilityTimeout": str(self.visibility_timeout_s),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                             "maxReceiveCount": spec["max_receive_count"]}),
            })["QueueUrl"]
            self.queue_urls[stage], self.dlq_urls[stage] = url, dlq
        self._create_notifications(s3, sqs)
        self._create_streams()
        self._create_idempotency_table()
        self._create_tracking_table()

    def _create_notifications(self, s3: Any, sqs: Any) -> None:
        """The buckets' QueueConfigurations, from the contract's rule (the same one
        plugins/contract-values.js follows for serverless.yml), refused when two overlap as
        S3 itself would refuse them (moto does not check)."""
        wanted = contract.notifications()
        overlaps = contract.notification_overlaps(wanted)
        if overlaps:
            raise ValueError(f"S3 would refuse overlapping notification filters: {overlaps}")
        arns = {stage: sqs.get_queue_attributes(QueueUrl=self.queue_urls[stage],
                                                AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                for stage in contract.STAGES}
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for n in wanted:
            rules = ([{"Name": "prefix", "Value": n.prefix}] if n.prefix is not None else []) + [
                {"Name": "suffix", "Value": n.suffix}]
            by_bucket.setdefault(self.names.bucket(n.bucket), []).append({
                "QueueArn": arns[n.stage], "Events": [n.event], "Filter": {"Key": {"FilterRules": rules}}})
        for bucket, configs in by_bucket.items():
            s3.put_bucket_notification_configuration(Bucket=bucket,
                                                     NotificationConfiguration={"QueueConfigurations": configs})

    def _create_streams(self) -> None:
        doc = contract.load()
        firehose = aws.client("firehose")
        for table in contract.TABLES:
            firehose.create_delivery_stream(
                DeliveryStreamName=self.names.stream(table), DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": f"arn:aws:iam::{self.names.account}:role/firehose-{table}",
                    "BucketARN": f"arn:aws:s3:::{self.names.bucket('analytics')}",
                    "Prefix": doc["analytics_prefixes"][table],
                    "ErrorOutputPrefix": doc["analytics_prefixes"]["firehose_errors"],
                    "CompressionFormat": "UNCOMPRESSED",
                    "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 5},
                })

    def _create_idempotency_table(self) -> None:
        ddb = aws.client("dynamodb")
        table = self.names.idempotency_table
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True,
                                                                          "AttributeName": "expiration"})

    def _create_tracking_table(self) -> None:
        ddb = aws.client("dynamodb")
        table = self.names.tracking_table
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "part", "AttributeType": "S"},
                                               {"AttributeName": "n", "AttributeType": "N"},
                                               {"AttributeName": "open", "AttributeType": "S"},
                                               {"AttributeName": "updated_at", "AttributeType": "N"}],
                         KeySchema=[{"AttributeName": "part", "KeyType": "HASH"},
                                    {"AttributeName": "n", "KeyType": "RANGE"}],
                         GlobalSecondaryIndexes=[{  # the videos without an end state (sparse), for the sweeper
                             "IndexName": contract.load()["tracking_open_index"],
                             "KeySchema": [{"AttributeName": "open", "KeyType": "HASH"},
                                           {"AttributeName": "updated_at", "KeyType": "RANGE"}],
                             "Projection": {"ProjectionType": "KEYS_ONLY"}}])
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True,
                                                                          "AttributeName": "expires_at"})

    def _create_alert_resources(self) -> None:
        """The alert topic (plus a subscribed queue to read alerts from), the alert-state
        table and the collection of known faces, as serverless.yml declares them."""
        from vidsift.core import alerts, matching

        sns, sqs, ddb = aws.client("sns"), aws.client("sqs"), aws.client("dynamodb")
        self.alert_topic_arn = sns.create_topic(Name=alerts.topic_name(self.names),
                                                Attributes={"KmsMasterKeyId": "alias/aws/sns"})["TopicArn"]
        self.alert_queue_url = sqs.create_queue(QueueName=f"{alerts.topic_name(self.names)}-subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.alert_queue_url,
                                             AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.alert_topic_arn, Protocol="sqs", Endpoint=queue_arn)
        table = alerts.table_name(self.names)
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True,
                                                                          "AttributeName": "expires_at"})
        if self.with_models:
            aws.create_collection(matching.collection_name(self.names))
        if self.visitors_out is not None:
            from vidsift.local import visitors

            visitors.create(self.names, self.visitors_out)
