"""Detached AWS Batch runs through the control plane, against moto on loopback: an OGC async
hot-spot analysis submitted, detached, then finished by its SQS event (the test plays the
container with the real entry point), failed with the CloudWatch log tail, cancelled with
TerminateJob, a duplicated event, a lost event recovered by DescribeJobs polling."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from controlplane.models import Artifact, ProcessRun
from controlplane.services import runs as svc
from controlplane.services.batch_events import (
    batch_event_handle,
    batch_events_consume,
    batch_jobs_poll,
)
from controlplane.tasks import run_execute
from tests.aws_batch import AwsBatch, aws_batch  # noqa: F401  (a fixture)
from tests.executors.batch.test_controlplane import _gi_star  # Gi*, the textbook formula in numpy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("honua_catalog")]

RNG = np.random.default_rng(5)
PTS = RNG.uniform(-1, 1, size=(24, 2))
Y = RNG.normal(5, 1, size=24) + (PTS[:, 1] > 0.4) * 3
BAND = 0.6


def _execute(client: Any, prefer: str) -> Any:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(a), float(b)]},
         "properties": {"v": float(v)}} for (a, b), v in zip(PTS, Y, strict=True)]}
    body = {"inputs": {"features": {"value": fc, "mediaType": "application/geo+json"}, "field": "v",
                       "distance": BAND}, "response": "document"}
    return client.post("/ogcapi/processes/hotspots/execution", data=json.dumps(body),
                       content_type="application/json", headers={"Prefer": prefer})


def _submit(client: Any) -> str:
    response = _execute(client, "respond-async")
    assert response.status_code == 201, response.content
    job = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert run_execute(job) == "done"
    return job


def _status(client: Any, job: str) -> dict[str, Any]:
    return json.loads(client.get(f"/ogcapi/jobs/{job}").content)


def _gi_of(client: Any, job: str) -> np.ndarray:
    results = json.loads(client.get(f"/ogcapi/jobs/{job}/results").content)
    result = results["result"]
    features = result["value"]["features"] if "value" in result else result["features"]
    return np.array([f["properties"]["gi_z"] for f in features])


def test_a_detached_run_completes_from_its_sqs_event_once(client, aws_batch: AwsBatch, tmp_path):  # noqa: F811
    job = _submit(client)
    run = ProcessRun.objects.get(id=job)
    # the worker let go: running, leased to AWS Batch with no expiry, the job recorded
    assert run.status == "running" and run.lease_owner == "external:aws-batch" and run.lease_expires_at is None
    assert run.external["runner"] == "aws" and run.external["tier"] == "batch"
    assert _status(client, job)["status"] == "running"
    described = aws_batch.job(run.external["job_id"])
    assert described["parameters"]["runId"] == job
    # the reaper leaves it alone
    assert svc.runs_reap_expired() == {"requeued": 0, "failed": 0, "cancelled": 0}
    # the container runs; AWS Batch emits the state change; Honua consumes it
    assert aws_batch.play_task(described, tmp_path / "c").returncode == 0
    event = aws_batch.event(run.external["job_id"], status="SUCCEEDED")
    aws_batch.send(event)
    assert batch_events_consume(wait_seconds=1) == 1
    run.refresh_from_db()
    assert run.status == "succeeded" and run.tier_used == "batch" and run.lease_owner == "external:aws-batch"
    assert _status(client, job)["status"] == "successful"
    np.testing.assert_allclose(_gi_of(client, job), _gi_star(PTS, Y, BAND), rtol=1e-6)
    s3 = aws_batch.client("s3")
    for bucket in (aws_batch.input_bucket, aws_batch.output_bucket):  # removed after the commit
        assert s3.list_objects_v2(Bucket=bucket, Prefix=f"jobs/{job}/").get("KeyCount", 0) == 0
    finished, messages = run.finished_at, len(run.messages)
    # the same event again (EventBridge delivers at least once): no second completion, deleted
    aws_batch.send(event)
    assert batch_events_consume(wait_seconds=1) == 1
    assert batch_event_handle(event=event) == "ignored"
    run.refresh_from_db()
    assert run.status == "succeeded" and run.finished_at == finished and len(run.messages) == messages
    time.sleep(1.2)  # past the queue's visibility timeout: a message not deleted would be back
    assert aws_batch.queue_depth() == 0


def test_a_failed_job_fails_its_run_with_the_log_tail(client, aws_batch: AwsBatch):  # noqa: F811
    job = _submit(client)
    job_id = ProcessRun.objects.get(id=job).external["job_id"]
    logs = aws_batch.client("logs")
    stream = f"{aws_batch.job_definition}/default/{job_id}"
    logs.create_log_group(logGroupName="/aws/batch/job")
    logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName=stream)
    now = int(time.time() * 1000)
    lines = ["starting", "loading libpysal", "Traceback (most recent call last):", "  File task.py",
             "ValueError: the weights are empty", "exit 1"]
    logs.put_log_events(logGroupName="/aws/batch/job", logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)])
    aws_batch.send(aws_batch.event(job_id, status="FAILED", reason="Essential container in task exited",
                                   log_stream=stream))
    assert batch_events_consume(wait_seconds=1) == 1
    run = ProcessRun.objects.get(id=job)
    assert run.status == "failed" and run.error["code"] == "batch-job-failed"
    assert "Essential container in task exited" in run.error["message"]
    assert "ValueError: the weights are empty" in run.error["message"] and "starting" not in run.error["message"]
    tail = Artifact.objects.get(run_id=run.id, name="aws-batch-log.txt")
    assert tail.size == len("\n".join(lines[-5:]) + "\n")  # HONUA_BATCH_LOG_TAIL_LINES=5 in the fixture
    status = _status(client, job)
    assert status["status"] == "failed"


def test_cancelling_a_detached_run_terminates_its_job(client, aws_batch: AwsBatch):  # noqa: F811
    job = _submit(client)
    run = ProcessRun.objects.get(id=job)
    job_id = run.external["job_id"]
    response = client.delete(f"/ogcapi/jobs/{job}")
    assert response.status_code == 200, response.content
    # TerminateJob reached AWS Batch (DescribeJobs shows its reason); the run awaits the end
    assert aws_batch.job(job_id)["statusReason"] == f"cancelled in Honua (run {job})"
    run.refresh_from_db()
    assert run.status == "cancelling"
    # AWS Batch ends a terminated job as FAILED with that reason
    aws_batch.send(aws_batch.event(job_id, status="FAILED", reason=f"cancelled in Honua (run {job})"))
    assert batch_events_consume(wait_seconds=1) == 1
    run.refresh_from_db()
    assert run.status == "cancelled" and run.error is None


def test_a_lost_event_is_recovered_by_polling(client, aws_batch: AwsBatch, tmp_path):  # noqa: F811
    job = _submit(client)
    run = ProcessRun.objects.get(id=job)
    described = aws_batch.job(run.external["job_id"])
    assert described["status"] == "SUCCEEDED"  # moto's no-Docker Batch ends jobs at once
    assert aws_batch.play_task(described, tmp_path / "c").returncode == 0
    assert batch_jobs_poll(older_than_seconds=3600) == 0  # recent: the event may still come
    assert batch_jobs_poll(older_than_seconds=0) == 1
    run.refresh_from_db()
    assert run.status == "succeeded"
    np.testing.assert_allclose(_gi_of(client, job), _gi_star(PTS, Y, BAND), rtol=1e-6)
    assert batch_jobs_poll(older_than_seconds=0) == 0


def test_polling_fails_a_run_whose_job_failed(client, aws_batch: AwsBatch, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")  # moto (in this process) fails the job
    job = _submit(client)
    assert batch_jobs_poll(older_than_seconds=0) == 1
    run = ProcessRun.objects.get(id=job)
    assert run.status == "failed" and run.error["code"] == "batch-job-failed"


def test_events_that_are_not_final_or_not_ours_change_nothing(client, aws_batch: AwsBatch):  # noqa: F811
    job = _submit(client)
    job_id = ProcessRun.objects.get(id=job).external["job_id"]
    running = aws_batch.event(job_id, status="RUNNING")
    other = aws_batch.event(job_id, status="SUCCEEDED")
    other["detail"]["jobId"] = "00000000-0000-0000-0000-000000000000"
    foreign = {**aws_batch.event(job_id, status="SUCCEEDED"), "source": "aws.ecs"}
    for event in (running, other, foreign):
        aws_batch.send(event)
    aws_batch.client("sqs").send_message(QueueUrl=aws_batch.queue_url, MessageBody="not json")
    handled = 0
    for _ in range(4):
        handled += batch_events_consume(wait_seconds=1)
        if handled == 4:
            break
    assert handled == 4
    assert ProcessRun.objects.get(id=job).status == "running"


# --- the SNS webhook --------------------------------------------------------------------------

TOPIC = "arn:aws:sns:us-east-1:123456789012:honua-batch-events"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
SNS_PATH = "/aws/sns/batch-events"


@pytest.fixture
def sns_signer(settings: Any) -> Any:
    """A locally made key and certificate, put in the verifier's cache under an AWS SNS
    certificate URL (the verifier fetches from AWS hosts only); ``sign(message)``."""
    import base64
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID

    from controlplane.services import sns

    settings.HONUA = {**settings.HONUA, "BATCH": {**settings.HONUA["BATCH"], "SNS_TOPIC_ARNS": [TOPIC]}}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    sns.certificates[CERT_URL] = cert

    def canonical(message: dict[str, Any]) -> bytes:
        # written here from the AWS documentation, not taken from the verifier
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        if message["Type"] != "Notification":
            keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        return "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()

    def sign(message: dict[str, Any], version: str = "2", signer: Any = key) -> dict[str, Any]:
        digest = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = signer.sign(canonical(message), padding.PKCS1v15(), digest)
        return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode(),
                "SigningCertURL": CERT_URL}

    yield sign
    sns.certificates.pop(CERT_URL, None)


def _notification(event: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Type": "Notification", "MessageId": "7a1b5c2e-0000-4000-8000-000000000001", "TopicArn": TOPIC,
            "Subject": "Batch Job State Change", "Message": json.dumps(event),
            "Timestamp": "2026-11-25T12:00:00.000Z", **extra}


def _post(client: Any, message: dict[str, Any]) -> Any:
    return client.post(SNS_PATH, data=json.dumps(message), content_type="text/plain; charset=UTF-8")


def test_sns_notification_with_a_valid_signature_completes_the_run(client, aws_batch: AwsBatch, sns_signer, tmp_path):  # noqa: F811
    job = _submit(client)
    job_id = ProcessRun.objects.get(id=job).external["job_id"]
    assert aws_batch.play_task(aws_batch.job(job_id), tmp_path / "c").returncode == 0
    event = aws_batch.event(job_id, status="SUCCEEDED")
    # forged: signed by another key; then a valid one (signature version 1)
    from cryptography.hazmat.primitives.asymmetric import rsa

    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = _post(client, sns_signer(_notification(event), signer=forger))
    assert forged.status_code == 403 and "does not verify" in forged.json()["error"]
    tampered = sns_signer(_notification(event))
    tampered["Message"] = tampered["Message"].replace("SUCCEEDED", "FAILED")
    assert _post(client, tampered).status_code == 403
    assert ProcessRun.objects.get(id=job).status == "running"
    response = _post(client, sns_signer(_notification(event), version="1"))
    assert response.status_code == 200 and response.json() == {"outcome": "succeeded"}
    assert ProcessRun.objects.get(id=job).status == "succeeded"
    np.testing.assert_allclose(_gi_of(client, job), _gi_star(PTS, Y, BAND), rtol=1e-6)
    again = _post(client, sns_signer(_notification(event)))
    assert again.status_code == 200 and again.json() == {"outcome": "ignored"}


def test_sns_refuses_unsigned_foreign_hosts_and_other_topics(client, aws_batch: AwsBatch, sns_signer):  # noqa: F811
    job = _submit(client)
    event = aws_batch.event(ProcessRun.objects.get(id=job).external["job_id"], status="FAILED")
    unsigned = _notification(event)
    assert _post(client, unsigned).status_code == 403
    for url in ("https://evil.example.com/SimpleNotificationService-0123.pem",
                "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.pem",
                "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-0123.pem",
                "https://127.0.0.1/SimpleNotificationService-0123.pem"):
        response = _post(client, {**sns_signer(_notification(event)), "SigningCertURL": url})
        assert response.status_code == 403, url
        assert "not an AWS SNS certificate URL" in response.json()["error"]
    other_topic = sns_signer(_notification(event, TopicArn="arn:aws:sns:us-east-1:999999999999:other"))
    assert _post(client, other_topic).status_code == 403
    confirm = sns_signer({"Type": "SubscriptionConfirmation", "MessageId": "m1", "Token": "t", "TopicArn": TOPIC,
                          "Message": "confirm", "SubscribeURL": "https://evil.example.com/?Action=ConfirmSubscription&x",
                          "Timestamp": "2026-11-25T12:00:00.000Z"})
    response = _post(client, confirm)
    assert response.status_code == 403 and "SubscribeURL" in response.json()["error"]
    assert _post(client, {"not": "sns"}).status_code == 403
    assert client.post(SNS_PATH, data=b"\xff", content_type="text/plain").status_code == 403
    assert ProcessRun.objects.get(id=job).status == "running"


def test_sns_endpoint_is_off_without_topics(client, settings):
    settings.HONUA = {**settings.HONUA, "BATCH": {**settings.HONUA["BATCH"], "SNS_TOPIC_ARNS": []}}
    assert client.post(SNS_PATH, data="{}", content_type="text/plain").status_code == 404
    assert client.get(SNS_PATH).status_code == 405


def test_batch_lifecycle_command_installs_the_jobs_rule(aws_batch: AwsBatch):  # noqa: F811
    from django.core.management import call_command

    s3 = aws_batch.client("s3")
    s3.put_bucket_lifecycle_configuration(Bucket=aws_batch.input_bucket, LifecycleConfiguration={"Rules": [
        {"ID": "theirs", "Status": "Enabled", "Filter": {"Prefix": "other/"}, "Expiration": {"Days": 30}}]})
    call_command("batch_lifecycle", verbosity=0)
    call_command("batch_lifecycle", verbosity=0)  # idempotent
    for bucket in (aws_batch.input_bucket, aws_batch.output_bucket):
        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
        ours = rules["honua-batch-jobs-expiry"]
        assert ours["Filter"] == {"Prefix": "jobs/"} and ours["Expiration"]["Days"] == 7
    assert "theirs" in {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=aws_batch.input_bucket)["Rules"]}


def test_a_sync_request_gets_the_job_reference_and_the_worker_loop_finishes_it(client, aws_batch: AwsBatch, tmp_path):  # noqa: F811
    from django.core.management import call_command

    response = _execute(client, "respond-sync")
    # the run went to AWS Batch while the client waited: it answers as for a passed deadline
    assert response.status_code == 201, response.content
    job = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    run = ProcessRun.objects.get(id=job)
    assert run.mode == "async" and run.status == "running" and run.lease_owner == "external:aws-batch"
    assert aws_batch.play_task(aws_batch.job(run.external["job_id"]), tmp_path / "c").returncode == 0
    aws_batch.send(aws_batch.event(run.external["job_id"], status="SUCCEEDED"))
    call_command("batch_events", "--once", "--wait", "1", verbosity=0)
    assert ProcessRun.objects.get(id=job).status == "succeeded"
    np.testing.assert_allclose(_gi_of(client, job), _gi_star(PTS, Y, BAND), rtol=1e-6)
