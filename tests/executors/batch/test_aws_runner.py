"""The AWS Batch runner against moto on loopback: staging to S3, SubmitJob (parameters,
timeout, retry strategy, tags), detaching, the container entry point run on the same staged
files, resuming from the job's end (outputs, failure with the CloudWatch log tail, timeout),
TerminateJob."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from executors.base import Cancelled, DeadlineExceeded, Detached, ExecutorError
from executors.batch.aws import AwsRunnerConfig
from executors.batch.executor import BatchExecutor
from tests.aws_batch import AwsBatch, aws_batch  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def _geotiff(red: np.ndarray, nir: np.ndarray) -> bytes:
    with rasterio.MemoryFile() as mem:
        with mem.open(driver="GTiff", width=red.shape[1], height=red.shape[0], count=2, dtype="uint16",
                      crs="EPSG:32633", transform=from_origin(500000, 4100000, 30, 30), nodata=0) as ds:
            ds.write(red, 1)
            ds.write(nir, 2)
        return mem.read()


RNG = np.random.default_rng(11)
RED = RNG.integers(1, 3000, size=(12, 16)).astype("uint16")
NIR = RNG.integers(1, 6000, size=(12, 16)).astype("uint16")
RED[0, 0] = 0
SCENE = _geotiff(RED, NIR)
NDVI_INPUTS = {"raster": {"value": base64.b64encode(SCENE).decode(), "media_type": "image/tiff",
                          "encoding": "base64", "name": "scene.tif"}, "red_band": 1, "nir_band": 2}


def _submit(batch_ex: BatchExecutor, recorder: Any, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Execute NDVI on the AWS runner, capturing the SubmitJob request Honua's client sent."""
    from controlplane.services.batch_events import batch_client

    sent: dict[str, Any] = {}

    def capture(params: dict[str, Any], **kwargs: Any) -> None:
        sent.update(params)

    client = batch_client("batch")
    client.meta.events.register("before-parameter-build.batch.SubmitJob", capture)
    try:
        with pytest.raises(Detached) as info:
            batch_ex.execute("ndvi", NDVI_INPUTS, recorder.ctx("ndvi", run_id=run_id))
    finally:
        client.meta.events.unregister("before-parameter-build.batch.SubmitJob", capture)
    return info.value.external, sent


def test_submission_stages_inputs_and_submits_a_detached_job(aws_batch: AwsBatch, recorder):  # noqa: F811
    run_id = str(uuid.uuid4())
    external, sent = _submit(BatchExecutor(), recorder, run_id)
    s3 = aws_batch.client("s3")
    inputs_key = f"jobs/{run_id}/inputs.json"
    assert external["runner"] == "aws" and external["inputs_uri"] == f"s3://{aws_batch.input_bucket}/{inputs_key}"
    assert external["outputs_uri"] == f"s3://{aws_batch.output_bucket}/jobs/{run_id}/out"
    doc = json.loads(s3.get_object(Bucket=aws_batch.input_bucket, Key=inputs_key)["Body"].read())
    assert doc["task"] == "ndvi" and doc["run_id"] == run_id
    assert doc["inputs"]["red_band"] == 1 and doc["inputs"]["nir_band"] == 2
    staged = doc["inputs"]["raster"]
    assert staged["staged"] is True and staged["href"].startswith(f"s3://{aws_batch.input_bucket}/jobs/{run_id}/")
    key = staged["href"].split("/", 3)[3]
    assert s3.get_object(Bucket=aws_batch.input_bucket, Key=key)["Body"].read() == SCENE
    script = s3.get_object(Bucket=aws_batch.input_bucket, Key=f"jobs/{run_id}/task.py")["Body"].read()
    assert hashlib.sha256(script).hexdigest() == doc["script"]["sha256"]
    assert s3.head_object(Bucket=aws_batch.input_bucket, Key=inputs_key)["ServerSideEncryption"] == "AES256"
    # What AWS Batch recorded (DescribeJobs) ...
    job = aws_batch.job(external["job_id"])
    assert job["parameters"] == {"runId": run_id, "inputsUri": external["inputs_uri"],
                                 "outputsUri": external["outputs_uri"]}
    assert job["timeout"] == {"attemptDurationSeconds": 900}
    assert job["jobName"] == f"honua-ndvi-{run_id}"
    assert job["tags"]["honua:run-id"] == run_id and job["tags"]["honua:task"] == "ndvi"
    # ... and what moto does not keep: the retry strategy and command, as sent.
    assert sent["retryStrategy"] == {"attempts": 4, "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onExitCode": "0", "action": "EXIT"},
        {"onReason": "*", "action": "EXIT"},
    ]}
    assert sent["containerOverrides"]["command"] == [
        "python", "-m", "executors.batch.entry", "Ref::inputsUri", "Ref::outputsUri"]
    assert sent["propagateTags"] is True and sent["jobQueue"] == aws_batch.job_queue
    assert any(f"job {external['job_id']}" in text for _, text in recorder.messages)


def test_entry_point_on_the_staged_files_then_resume_returns_the_raster(aws_batch: AwsBatch, recorder, tmp_path):  # noqa: F811
    run_id = str(uuid.uuid4())
    batch_ex = BatchExecutor()
    external, _ = _submit(batch_ex, recorder, run_id)
    job = aws_batch.job(external["job_id"])
    done = aws_batch.play_task(job, tmp_path / "container")
    assert done.returncode == 0, done.stderr
    s3 = aws_batch.client("s3")
    result = json.loads(s3.get_object(Bucket=aws_batch.output_bucket, Key=f"jobs/{run_id}/out/result.json")["Body"].read())
    assert result["status"] == "succeeded"
    assert result["outputs"]["ndvi"]["href"] == f"{external['outputs_uri']}/ndvi.tif"
    outputs = batch_ex.resume(external, {**job, "status": "SUCCEEDED"}, recorder.ctx("ndvi", run_id=run_id))
    with rasterio.MemoryFile(base64.b64decode(outputs["ndvi"]["value"])) as mem, mem.open() as ds:
        got = ds.read(1)
        assert ds.transform == from_origin(500000, 4100000, 30, 30)
    r, n = RED.astype(float), NIR.astype(float)
    expected = ((n - r) / (n + r)).astype("float32")
    expected[0, 0] = -9999.0
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # the run's staged files stay until the run is recorded, then the control plane removes them
    assert s3.list_objects_v2(Bucket=aws_batch.output_bucket, Prefix=f"jobs/{run_id}/").get("KeyCount", 0) == 2
    batch_ex.remote_cleanup(external, run_id)
    for bucket in (aws_batch.input_bucket, aws_batch.output_bucket):
        assert s3.list_objects_v2(Bucket=bucket, Prefix=f"jobs/{run_id}/").get("KeyCount", 0) == 0


def test_a_failed_job_fails_with_its_log_tail_attached(aws_batch: AwsBatch, recorder):  # noqa: F811
    run_id = str(uuid.uuid4())
    batch_ex = BatchExecutor()
    external, _ = _submit(batch_ex, recorder, run_id)
    logs = aws_batch.client("logs")
    logs.create_log_group(logGroupName="/aws/batch/job")
    stream = f"honua/default/{external['job_id']}"
    logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName=stream)
    lines = [f"line {i}" for i in range(8)] + ["MemoryError: cannot allocate"]
    logs.put_log_events(logGroupName="/aws/batch/job", logStreamName=stream,
                        logEvents=[{"timestamp": int(time.time() * 1000) + i, "message": m} for i, m in enumerate(lines)])
    job = {**aws_batch.job(external["job_id"]), "status": "FAILED",
           "statusReason": "Essential container in task exited", "container": {"logStreamName": stream}}
    with pytest.raises(ExecutorError) as info:
        batch_ex.resume(external, job, recorder.ctx("ndvi", run_id=run_id))
    assert info.value.code == "batch-job-failed"
    assert "Essential container in task exited" in info.value.message
    assert "MemoryError: cannot allocate" in info.value.message and "line 3" not in info.value.message
    data, media = recorder.files["aws-batch-log.txt"]
    assert data.decode().splitlines() == lines[-5:] and media.startswith("text/plain")  # LOG_TAIL_LINES=5


def test_timeout_and_cancellation_map_to_their_errors(aws_batch: AwsBatch, recorder):  # noqa: F811
    run_id = str(uuid.uuid4())
    batch_ex = BatchExecutor()
    external, _ = _submit(batch_ex, recorder, run_id)
    job = aws_batch.job(external["job_id"])
    with pytest.raises(DeadlineExceeded):
        batch_ex.resume(external, {**job, "status": "FAILED", "statusReason": "Job attempt duration exceeded timeout"},
                        recorder.ctx("ndvi", run_id=run_id))
    with pytest.raises(Cancelled):
        batch_ex.resume(external, {**job, "status": "FAILED", "statusReason": "cancelled in Honua"},
                        recorder.ctx("ndvi", run_id=run_id, is_cancelled=lambda: True))
    batch_ex.remote_cancel(external, "cancelled in Honua (test)")
    assert aws_batch.job(external["job_id"])["statusReason"] == "cancelled in Honua (test)"


def test_spot_off_means_one_attempt():
    conf = AwsRunnerConfig(job_queue="q", job_definition="d", input_bucket="b", output_bucket="b",
                           spot=False, retry_attempts=5)
    assert conf.retry_strategy() == {"attempts": 1, "evaluateOnExit": [{"onReason": "*", "action": "EXIT"}]}


def test_an_output_outside_the_prefix_is_refused(aws_batch: AwsBatch, recorder, tmp_path):  # noqa: F811
    run_id = str(uuid.uuid4())
    batch_ex = BatchExecutor()
    external, _ = _submit(batch_ex, recorder, run_id)
    s3 = aws_batch.client("s3")
    s3.put_object(Bucket=aws_batch.output_bucket, Key=f"jobs/{run_id}/out/result.json", Body=json.dumps({
        "status": "succeeded",
        "outputs": {"x": {"href": f"s3://{aws_batch.input_bucket}/jobs/{run_id}/inputs.json",
                          "media_type": "application/json", "name": "inputs.json"}}}).encode())
    with pytest.raises(ExecutorError) as info:
        batch_ex.resume(external, {**aws_batch.job(external["job_id"]), "status": "SUCCEEDED"},
                        recorder.ctx("ndvi", run_id=run_id))
    assert info.value.code == "task-protocol-error" and "outside its output prefix" in info.value.message
