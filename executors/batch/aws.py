"""The AWS Batch runner: stage to S3, SubmitJob, detach; finish later from the job's files.

A run does not wait for its job: ``submit`` returns the external reference the executor
raises as ``Detached``; the control plane finishes the run when the job's state change
event (SQS) or a DescribeJobs poll says it ended, through ``BatchExecutor.resume``.

boto3 clients are not made here (executors import no SDK and no control plane): the control
plane hands its one client factory to ``aws_clients_use`` when Django starts.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from executors.base import ExecutionContext, TierUnavailable
from executors.batch.local import BatchJob, Runner, TaskOutcome
from executors.batch.staging import S3Staging, Staging, s3_split

ClientFactory = Callable[[str], Any]

ENTRY_COMMAND = ["python", "-m", "executors.batch.entry", "Ref::inputsUri", "Ref::outputsUri"]
# AWS Batch's reason for a Spot reclaim (and other host losses): "Host EC2 (instance i-...) terminated."
SPOT_REASON = "Host EC2*"
TERMINAL = ("SUCCEEDED", "FAILED")
JOB_NAME_RE = re.compile(r"[^A-Za-z0-9_-]")

_factory_lock = threading.Lock()
_factory: ClientFactory | None = None


def aws_clients_use(factory: ClientFactory | None) -> None:
    """Set the boto3 client factory of the AWS runner (``factory(service) -> client``)."""
    global _factory
    with _factory_lock:
        _factory = factory


def aws_clients() -> ClientFactory:
    with _factory_lock:
        if _factory is None:
            raise TierUnavailable("the AWS Batch runner has no AWS client factory (Django not started?)")
        return _factory


@dataclass(frozen=True)
class AwsRunnerConfig:
    job_queue: str
    job_definition: str
    input_bucket: str
    output_bucket: str
    timeout_seconds: int = 3600
    retry_attempts: int = 3
    spot: bool = True
    log_group: str = "/aws/batch/job"
    log_tail_lines: int = 50

    @classmethod
    def from_settings(cls, conf: dict[str, Any]) -> AwsRunnerConfig:
        missing = [
            f"HONUA_BATCH_{k}" for k in ("JOB_QUEUE", "JOB_DEFINITION", "INPUT_BUCKET") if not conf.get(k)
        ]
        if missing:
            raise TierUnavailable("the AWS Batch runner is not configured: set " + ", ".join(missing))
        return cls(
            job_queue=str(conf["JOB_QUEUE"]),
            job_definition=str(conf["JOB_DEFINITION"]),
            input_bucket=str(conf["INPUT_BUCKET"]),
            output_bucket=str(conf.get("OUTPUT_BUCKET") or conf["INPUT_BUCKET"]),
            timeout_seconds=int(conf.get("TIMEOUT_SECONDS", 3600)),
            retry_attempts=int(conf.get("RETRY_ATTEMPTS", 3)),
            spot=bool(conf.get("SPOT", True)),
            log_group=str(conf.get("LOG_GROUP") or "/aws/batch/job"),
            log_tail_lines=int(conf.get("LOG_TAIL_LINES", 50)),
        )

    def retry_strategy(self) -> dict[str, Any]:
        """Retry Spot host terminations (SPOT on) up to ``retry_attempts``; exit on anything
        else, success included (a task's own failure is not retried: it would fail again)."""
        if not self.spot:
            return {"attempts": 1, "evaluateOnExit": [{"onReason": "*", "action": "EXIT"}]}
        return {
            "attempts": max(1, min(10, self.retry_attempts)),
            "evaluateOnExit": [
                {"onStatusReason": SPOT_REASON, "action": "RETRY"},
                {"onExitCode": "0", "action": "EXIT"},
                {"onReason": "*", "action": "EXIT"},
            ],
        }


class AwsRunner(Runner):
    """Runs staged tasks as AWS Batch jobs; ``run`` is not offered: jobs detach."""

    name = "aws"
    detaches = True

    def __init__(self, config: AwsRunnerConfig, clients: ClientFactory | None = None) -> None:
        self.config = config
        self._clients = clients

    def client(self, service: str) -> Any:
        return (self._clients or aws_clients())(service)

    @property
    def staging(self) -> Staging:
        return S3Staging(self.client("s3"), self.config.input_bucket)

    @property
    def output_staging(self) -> S3Staging:
        return S3Staging(self.client("s3"), self.config.output_bucket)

    def output_prefix(self, run_id: str) -> str:
        return self.output_staging.url(f"{run_id}/out")

    def describe(self) -> str:
        return f"AWS Batch (job queue {self.config.job_queue}, job definition {self.config.job_definition})"

    def run(self, job: BatchJob, ctx: ExecutionContext) -> TaskOutcome:
        raise NotImplementedError("AWS Batch jobs detach: use submit()")

    def cancel(self, run_id: str) -> None:
        """Nothing runs here: a detached job is stopped with ``terminate``."""

    # --- submission --------------------------------------------------------------------

    def submit(self, job: BatchJob, ctx: ExecutionContext) -> dict[str, Any]:
        """SubmitJob for a staged task; returns the run's external reference."""
        env = [{"name": k, "value": v} for k, v in sorted(job.env.items())]
        if ctx.trace_parent:
            env.append({"name": "TRACEPARENT", "value": ctx.trace_parent})
        outputs_uri = job.output_prefix
        response = self.client("batch").submit_job(
            jobName=JOB_NAME_RE.sub("-", f"honua-{job.manifest.name}-{job.run_id}")[:128],
            jobQueue=self.config.job_queue,
            jobDefinition=self.config.job_definition,
            parameters={"runId": job.run_id, "inputsUri": job.inputs_uri, "outputsUri": outputs_uri},
            containerOverrides={"command": list(ENTRY_COMMAND), "environment": env},
            timeout={"attemptDurationSeconds": max(60, int(self.config.timeout_seconds))},
            retryStrategy=self.config.retry_strategy(),
            tags={
                "honua:run-id": job.run_id,
                "honua:task": job.manifest.name,
                "honua:task-version": str(job.manifest.version),
            },
            propagateTags=True,
        )
        return {
            "runner": self.name,
            "job_id": response["jobId"],
            "job_arn": response.get("jobArn", ""),
            "job_queue": self.config.job_queue,
            "inputs_uri": job.inputs_uri,
            "outputs_uri": outputs_uri,
            "task": job.manifest.name,
            "task_version": str(job.manifest.version),
        }

    # --- after submission --------------------------------------------------------------

    def describe_jobs(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """DescribeJobs (100 ids a call): job id -> the job's description."""
        ids = list(dict.fromkeys(job_ids))
        found: dict[str, dict[str, Any]] = {}
        batch = self.client("batch")
        for start in range(0, len(ids), 100):
            for job in batch.describe_jobs(jobs=ids[start : start + 100]).get("jobs", []):
                found[job["jobId"]] = job
        return found

    def terminate(self, job_id: str, reason: str) -> None:
        """TerminateJob (also cancels a job not started yet)."""
        self.client("batch").terminate_job(jobId=job_id, reason=reason[:1000])

    def log_tail(self, stream: str) -> list[str]:
        """The last lines of a job's CloudWatch Logs stream ([] when there is none)."""
        if not stream:
            return []
        response = self.client("logs").get_log_events(
            logGroupName=self.config.log_group,
            logStreamName=stream,
            limit=max(1, self.config.log_tail_lines),
            startFromHead=False,
        )
        return [str(e.get("message", "")).rstrip("\n") for e in response.get("events", [])]

    def read_result(self, external: dict[str, Any]) -> dict[str, Any] | None:
        """The job's result.json, or None when the task wrote none."""
        bucket, key = s3_split(str(external["outputs_uri"]).rstrip("/") + "/result.json")
        s3 = self.client("s3")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None  # the task wrote none (it never started, or died)
            raise
        try:
            doc = json.loads(body.read())
        finally:
            body.close()
        return doc if isinstance(doc, dict) else None

    def read_output(self, external: dict[str, Any], href: str) -> bytes:
        """A file output; it must lie directly under the job's output prefix."""
        prefix = str(external["outputs_uri"]).rstrip("/") + "/"
        if not href.startswith(prefix) or "/" in href[len(prefix):]:
            raise ValueError(f"a task output points outside its output prefix: {href!r}")
        bucket, key = s3_split(href)
        body = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def cleanup(self, run_id: str) -> None:
        """Remove a finished job's staged inputs and outputs (the lifecycle rule is the net)."""
        self.staging.delete(run_id)
        if self.config.output_bucket != self.config.input_bucket:
            self.output_staging.delete(run_id)
