"""The batch tier through the control plane: cancellation of a running job, progress on the
run, logs kept as run artifacts, and one asynchronous OGC execution end to end."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from django.db import connection

from controlplane.models import Artifact, ProcessDefinition, ProcessRun, Tenant
from controlplane.services import runs as svc

from .conftest import processes_of

SLEEPER = """
import os, time
def run(inputs, ctx):
    if os.fork() == 0:
        time.sleep(120)
        os._exit(0)
    print("working", flush=True)
    ctx.progress(42, "halfway there")
    time.sleep(120)
    return {"result": "never"}
"""


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_batch_job_kills_its_processes(batch_tasks, settings, honua_catalog):
    settings.HONUA = {**settings.HONUA, "LEASE_SECONDS": 1.0}
    batch_tasks("sleeper", SLEEPER)
    tenant = Tenant.objects.create(slug="batchco", name="Batch Co")
    definition = ProcessDefinition.objects.create(
        process_id="sleeper_test", version="1.0.0", revision=1,
        spec={"id": "sleeper_test", "handlers": {"batch": "sleeper"}, "outputs": [{"name": "result", "type": "string"}]},
        spec_sha256="0" * 64, title="Sleeper", tier_order=["batch"], resource_class="python_batch",
        default_mode="async",
    )
    run = svc.run_create(fields={
        "tenant": tenant, "principal": "tester", "surface": "ogc", "process_id": "sleeper_test",
        "process_version": "1.0.0", "definition": definition, "definition_revision": 1, "mode": "async",
        "resource_class": "python_batch", "tier_order": ["batch"], "inputs": {}, "input_hash": "a" * 64,
    })
    from controlplane.tasks import run_execute

    def work() -> None:
        try:
            run_execute(str(run.id))
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.progress == 42:
            break
        time.sleep(0.1)
    assert run.status == "running" and run.progress == 42 and run.progress_message == "halfway there"
    assert len(processes_of(str(run.id))) >= 3
    assert svc.run_cancel(run_id=run.id, tenant_id=tenant.pk, actor="tester") == "cancelling"
    worker.join(20)
    assert not worker.is_alive()
    run.refresh_from_db()
    assert run.status == "cancelled" and run.tier_used in ("", None, "batch")
    time.sleep(0.2)
    assert processes_of(str(run.id)) == []
    stdout = Artifact.objects.get(run_id=run.id, name="stdout.txt")
    assert stdout.size == len(b"working\n") and stdout.media_type.startswith("text/plain")
    assert any("local runner as user nobody" in m["text"] for m in run.messages)


def _gi_star(pts: np.ndarray, y: np.ndarray, band: float) -> np.ndarray:
    n = len(y)
    d = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    w = (d <= band).astype(float)
    xbar, s = y.mean(), np.sqrt((y**2).mean() - y.mean() ** 2)
    wsum = w.sum(axis=1)
    return (w @ y - xbar * wsum) / (s * np.sqrt((n * (w**2).sum(axis=1) - wsum**2) / (n - 1)))


@pytest.mark.django_db(transaction=True)
def test_ogc_async_hotspots_end_to_end(batch_tasks, honua_catalog, client):
    from controlplane.tasks import run_execute

    rng = np.random.default_rng(3)
    pts = rng.uniform(-1, 1, size=(30, 2))
    y = rng.normal(5, 1, size=30) + (pts[:, 1] > 0.4) * 3
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(a), float(b)]},
         "properties": {"v": float(v)}} for (a, b), v in zip(pts, y, strict=True)]}
    body = {"inputs": {"features": {"value": fc, "mediaType": "application/geo+json"}, "field": "v",
                       "distance": 0.6}, "response": "document"}
    response = client.post("/ogcapi/processes/hotspots/execution", data=json.dumps(body),
                           content_type="application/json", headers={"Prefer": "respond-async"})
    assert response.status_code == 201, response.content
    job = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert json.loads(client.get(f"/ogcapi/jobs/{job}").content)["status"] == "accepted"
    run_execute(job)
    status = json.loads(client.get(f"/ogcapi/jobs/{job}").content)
    assert status["status"] == "successful", status
    assert ProcessRun.objects.get(id=job).tier_used == "batch"
    results = json.loads(client.get(f"/ogcapi/jobs/{job}/results").content)
    features = results["result"]["value"]["features"] if "value" in results["result"] else results["result"]["features"]
    got = np.array([f["properties"]["gi_z"] for f in features])
    np.testing.assert_allclose(got, _gi_star(pts, y, 0.6), rtol=1e-6)
