"""AWS Batch through moto on loopback (on top of tests/aws.py): buckets, the SQS completion
queue, a compute environment, job queue and job definition, Honua's batch tier switched to
the AWS runner for one test, and ``play_task``: the test playing the Batch container, running
the real entry point on the staged S3 files.

moto's Batch runs jobs without Docker when its config says ``batch.use_docker: false``
(moto.batch_simple): a submitted job is SUCCEEDED at once (FAILED with
MOTO_SIMPLE_BATCH_FAIL_AFTER set); nothing runs, so the test runs the task itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aws import CREDENTIALS, REGION, AwsEnv

ROOT = Path(__file__).resolve().parent.parent


def _moto_config(aws: AwsEnv, config: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{aws.endpoint_url}/moto-api/config", data=json.dumps(config).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        assert response.status in (200, 201)


@dataclass
class AwsBatch:
    aws: AwsEnv
    input_bucket: str
    output_bucket: str
    queue_url: str
    job_queue: str
    job_definition: str
    log_group: str = "/aws/batch/job"

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def job(self, job_id: str) -> dict[str, Any]:
        jobs = self.client("batch").describe_jobs(jobs=[job_id])["jobs"]
        assert len(jobs) == 1, jobs
        return jobs[0]

    def play_task(self, job: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
        """Run ``python -m executors.batch.entry`` with the job's parameters, as its container
        would (S3 through AWS_ENDPOINT_URL, credentials in the environment, no Django)."""
        params = job["parameters"]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "HOME": str(tmp),
            "AWS_ENDPOINT_URL": self.aws.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(tmp / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
            **CREDENTIALS,
        }
        tmp.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [sys.executable, "-m", "executors.batch.entry", params["inputsUri"], params["outputsUri"]],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=120, check=False,
        )

    def event(self, job_id: str, *, status: str | None = None, reason: str | None = None,
              log_stream: str | None = None) -> dict[str, Any]:
        """The EventBridge "Batch Job State Change" event AWS would send for the job (its
        detail is the job's DescribeJobs description, as AWS documents)."""
        detail = self.job(job_id)
        if status is not None:
            detail["status"] = status
        if reason is not None:
            detail["statusReason"] = reason
        if log_stream is not None:
            detail.setdefault("container", {})["logStreamName"] = log_stream
        return {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Batch Job State Change",
            "source": "aws.batch", "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
            "resources": [detail.get("jobArn", "")], "detail": detail,
        }

    def send(self, event: dict[str, Any]) -> None:
        self.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(event))

    def queue_depth(self) -> int:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def aws_batch(aws: AwsEnv, settings: Any, tmp_path_factory: Any) -> Iterator[AwsBatch]:
    """AWS Batch, S3 and SQS at moto, and Honua's batch tier on the AWS runner (shipped tasks
    signed into this test's signatures file)."""
    from executors.batch.executor import signature_file, signing_key, task_dirs
    from executors.batch.manifest import manifest_load, manifest_sign, task_names
    from executors.registry import get_executor

    _moto_config(aws, {"batch": {"use_docker": False}})
    suffix = uuid.uuid4().hex[:10]
    s3 = aws.client("s3")
    input_bucket, output_bucket = f"honua-in-{suffix}", f"honua-out-{suffix}"
    s3.create_bucket(Bucket=input_bucket)
    s3.create_bucket(Bucket=output_bucket)
    queue_url = aws.client("sqs").create_queue(
        QueueName=f"honua-batch-events-{suffix}", Attributes={"VisibilityTimeout": "1"}
    )["QueueUrl"]
    iam = aws.client("iam")
    role = iam.create_role(
        RoleName=f"batch-service-{suffix}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]
    batch = aws.client("batch")
    env_arn = batch.create_compute_environment(
        computeEnvironmentName=f"honua-ce-{suffix}", type="UNMANAGED", state="ENABLED", serviceRole=role,
    )["computeEnvironmentArn"]
    job_queue = batch.create_job_queue(
        jobQueueName=f"honua-jq-{suffix}", state="ENABLED", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env_arn}],
    )["jobQueueName"]
    job_definition = batch.register_job_definition(
        jobDefinitionName=f"honua-tasks-{suffix}", type="container",
        containerProperties={
            "image": "honua/batch-tasks:test",
            "command": ["python", "-m", "executors.batch.entry", "Ref::inputsUri", "Ref::outputsUri"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        },
    )["jobDefinitionName"]
    signatures = tmp_path_factory.mktemp("batch-sig") / "signatures.json"
    settings.HONUA = {
        **settings.HONUA,
        "BATCH": {
            **settings.HONUA["BATCH"],
            "RUNNER": "aws", "AWS_REGION": REGION, "AWS_ENDPOINT_URL": aws.endpoint_url,
            "JOB_QUEUE": job_queue, "JOB_DEFINITION": job_definition,
            "INPUT_BUCKET": input_bucket, "OUTPUT_BUCKET": output_bucket, "SQS_QUEUE_URL": queue_url,
            "TIMEOUT_SECONDS": 900, "RETRY_ATTEMPTS": 4, "SPOT": True, "SIGNATURES": str(signatures),
            "LOG_TAIL_LINES": 5,
        },
    }
    for name in task_names(task_dirs()):
        manifest_sign(manifest_load(name, task_dirs()), key=signing_key(), signatures=signature_file())
    executor = get_executor("batch")
    executor._runner = None  # the runner is made from the settings on first use
    try:
        yield AwsBatch(aws=aws, input_bucket=input_bucket, output_bucket=output_bucket, queue_url=queue_url,
                       job_queue=job_queue, job_definition=job_definition)
    finally:
        executor._runner = None
        _moto_config(aws, {"batch": {"use_docker": True}})
