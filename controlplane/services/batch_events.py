"""Completion of detached batch runs (AWS Batch): job state change events from SQS, a
DescribeJobs poll for events that never came, and the termination of cancelled jobs.

EventBridge delivers "Batch Job State Change" events (source aws.batch) to the SQS queue
HONUA_BATCH_SQS_QUEUE_URL; ``batch_events_consume`` long-polls it (``manage.py
batch_events`` loops on it), hands each SUCCEEDED/FAILED event to ``batch_event_handle``
and deletes the message once handled. Handling is idempotent: the run is finished by a
conditional write under a row lock, so a duplicate event, or one for a finished run, is a
no-op. A message whose handling raised is left in the queue: it returns after the queue's
visibility timeout (and lands in its dead-letter queue after maxReceiveCount).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils import timezone

from controlplane.contracts import RunStatus
from controlplane.models import ProcessRun
from controlplane.services import runs as run_services
from controlplane.services.aws import aws_client
from controlplane.services.execution import run_resume
from executors.base import ExecutorError
from executors.registry import get_executor

log = logging.getLogger("honua.batch_events")

EVENT_SOURCE = "aws.batch"
EVENT_TYPE = "Batch Job State Change"
FINAL = ("SUCCEEDED", "FAILED")


def _conf() -> dict[str, Any]:
    return dict(settings.HONUA.get("BATCH", {}))


def batch_client(service: str) -> Any:
    """Honua's boto3 client of ``service`` for the batch tier (region and endpoint of the
    batch settings; the one factory of controlplane/services/aws.py)."""
    conf = _conf()
    return aws_client(service, region=str(conf.get("AWS_REGION") or ""),
                      endpoint_url=str(conf.get("AWS_ENDPOINT_URL") or ""))


def batch_event_parse(body: str | bytes) -> dict[str, Any] | None:
    """The EventBridge event in an SQS message body (also when SNS wrapped it); None if the
    body is not one."""
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
            doc = json.loads(doc["Message"])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _run_of(detail: dict[str, Any]) -> str | None:
    run_id = (detail.get("parameters") or {}).get("runId")
    if isinstance(run_id, str):
        try:
            return str(uuid.UUID(run_id))
        except ValueError:
            return None
    job_id = detail.get("jobId")
    if not isinstance(job_id, str) or not job_id:
        return None
    found = (
        ProcessRun.objects.filter(
            status__in=[RunStatus.RUNNING.value, RunStatus.CANCELLING.value],
            lease_owner__startswith=run_services.EXTERNAL_OWNER_PREFIX,
            external__job_id=job_id,
        )
        .values_list("id", flat=True)
        .first()
    )
    return str(found) if found else None


def batch_event_handle(*, event: dict[str, Any]) -> str:
    """Act on one job state change event: finish its run on SUCCEEDED/FAILED. Returns the
    outcome (the run's final status, or "ignored")."""
    detail = event.get("detail")
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EVENT_TYPE or not isinstance(detail, dict):
        return "ignored"
    if detail.get("status") not in FINAL:
        return "ignored"  # SUBMITTED ... RUNNING: the run is already running
    run_id = _run_of(detail)
    if run_id is None:
        return "ignored"
    outcome = run_resume(run_id=run_id, job=detail)
    log.info("batch job event", extra={"run_id": run_id, "job_id": detail.get("jobId"),
                                        "job_status": detail.get("status"), "outcome": outcome})
    return outcome


def batch_events_consume(*, max_messages: int = 10, wait_seconds: int = 20) -> int:
    """Receive up to ``max_messages`` events (long polling ``wait_seconds``), handle them and
    delete each handled message. Returns how many messages were handled."""
    url = str(_conf().get("SQS_QUEUE_URL") or "")
    if not url:
        return 0
    sqs = batch_client("sqs")
    received = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(10, int(max_messages))),
        WaitTimeSeconds=max(0, min(20, int(wait_seconds))),
    )
    handled = 0
    for message in received.get("Messages", []):
        event = batch_event_parse(message.get("Body", ""))
        if event is not None:
            try:
                batch_event_handle(event=event)
            except Exception:  # the consumer's boundary: keep the message for a retry (then the DLQ)
                log.exception("batch event not handled", extra={"message_id": message.get("MessageId")})
                continue
        else:
            log.warning("not a batch job event: deleted", extra={"message_id": message.get("MessageId")})
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        handled += 1
    return handled


def batch_jobs_poll(*, older_than_seconds: int | None = None) -> int:
    """Detached runs without news for ``older_than_seconds``: ask AWS Batch (DescribeJobs)
    and finish those whose job ended (a lost event), re-send TerminateJob for cancelled runs
    whose job still runs. Returns how many runs were finished."""
    seconds = int(older_than_seconds if older_than_seconds is not None else _conf().get("POLL_AFTER_SECONDS", 600))
    stale = list(
        ProcessRun.objects.filter(
            status__in=[RunStatus.RUNNING.value, RunStatus.CANCELLING.value],
            lease_owner__startswith=run_services.EXTERNAL_OWNER_PREFIX,
            updated_at__lte=timezone.now() - timedelta(seconds=seconds),
        )
        .order_by("updated_at")
        .values_list("id", "status", "external")[:500]
    )
    by_tier: dict[str, list[tuple[Any, str, dict[str, Any]]]] = {}
    for run_id, status, external in stale:
        if isinstance(external, dict) and external.get("job_id"):
            by_tier.setdefault(str(external.get("tier") or "batch"), []).append((run_id, status, external))
    finished = 0
    for tier, runs in by_tier.items():
        executor = get_executor(tier)
        describe = getattr(executor, "remote_describe", None)
        if describe is None:
            continue
        jobs = describe([external for _, _, external in runs])
        for run_id, status, external in runs:
            job = jobs.get(str(external["job_id"]))
            if job is None:
                job = {"jobId": external["job_id"], "status": "FAILED",
                       "statusReason": "AWS Batch no longer knows this job"}
            if job.get("status") in FINAL:
                if run_resume(run_id=run_id, job=job) != "ignored":
                    finished += 1
            elif status == RunStatus.CANCELLING.value:
                batch_job_terminate(run_id=run_id)
    return finished


def batch_job_terminate(*, run_id: uuid.UUID | str) -> bool:
    """Ask the executor of a detached run to stop its job (TerminateJob). A refusal is
    recorded on the run, not raised: the poll tries again. Returns whether it was sent."""
    external = ProcessRun.objects.filter(id=run_id).values_list("external", flat=True).first()
    if not isinstance(external, dict) or not external.get("job_id"):
        return False
    executor = get_executor(str(external.get("tier") or "batch"))
    cancel = getattr(executor, "remote_cancel", None)
    if cancel is None:
        return False
    try:
        cancel(external, f"cancelled in Honua (run {run_id})")
    except (ClientError, BotoCoreError, ExecutorError) as exc:
        log.warning("TerminateJob failed", extra={"run_id": str(run_id), "error": str(exc)})
        run_services.run_report(run_id=run_id, messages=[("warning", f"Stopping job {external['job_id']} "
                                                          f"failed ({exc}); retried by the poll.")])
        return False
    run_services.run_report(run_id=run_id, messages=[("info", f"Job {external['job_id']} is being terminated.")])
    return True


BATCH_LIFECYCLE_RULE_ID = "honua-batch-jobs-expiry"


def batch_buckets_lifecycle(*, days: int) -> list[str]:
    """Install (or replace) on the batch input and output buckets the lifecycle rule that
    expires ``jobs/`` after ``days`` (staged files of runs that failed, or whose clean-up did
    not happen); the buckets' other rules stay. Returns the buckets."""
    conf = _conf()
    buckets = list(dict.fromkeys(b for b in (conf.get("INPUT_BUCKET"), conf.get("OUTPUT_BUCKET")) if b))
    s3 = batch_client("s3")
    rule = {"ID": BATCH_LIFECYCLE_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": "jobs/"},
            "Expiration": {"Days": int(days)}}
    for bucket in buckets:
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        rules = [r for r in rules if r.get("ID") != BATCH_LIFECYCLE_RULE_ID] + [rule]
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    return buckets
