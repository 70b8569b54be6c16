"""Submission through the control plane: admission, scheduling, tiers, deadlines, callbacks."""

from __future__ import annotations

import http.server
import threading
import time

import orjson
import pytest

from controlplane.contracts import ExecutionMode, ExecutionRequest, RunStatus, Subscriber, Surface
from controlplane.exceptions import (
    InputLimitExceeded,
    InvalidGeometry,
    MissingParameter,
    ModeNotSupported,
    NoSuchProcess,
    UnknownParameter,
)
from controlplane.models import ProcessDefinition, ProcessRun, Tenant, TenantPolicyOverride
from controlplane.services.execution import run_submit
from controlplane.services.outbound import OutboundRefused, outbound_check
from controlplane.tasks import run_execute

pytestmark = pytest.mark.usefixtures("honua_catalog")


def _request(principal, process_id="echo", mode=None, **inputs) -> ExecutionRequest:
    return ExecutionRequest(
        process_id=process_id, inputs=inputs, principal=principal, surface=Surface.OGC, mode=mode
    )


def _square(x: float, y: float, size: float) -> dict:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.mark.django_db(transaction=True)
def test_sync_run_executes_inline_and_is_recorded(principal):
    result = run_submit(_request(principal, string_input="teststring"))
    assert result.status is RunStatus.SUCCEEDED and result.mode is ExecutionMode.SYNC
    assert result.outputs == {"string_input": "teststring"}
    run = ProcessRun.objects.get(id=result.run_id)
    assert run.tier_used == "inprocess" and run.attempt_count == 1
    assert run.tiers_tried[-1]["outcome"] == "used"
    assert run.input_hash == _request(principal, string_input="teststring").input_hash()
    assert run.finished_at >= run.started_at >= run.created_at


@pytest.mark.django_db(transaction=True)
def test_async_run_is_queued_then_executed_by_the_task(principal):
    result = run_submit(_request(principal, mode=ExecutionMode.ASYNC, string_input="later"))
    assert result.status is RunStatus.QUEUED
    assert run_execute(str(result.run_id)) == "done"
    assert run_execute(str(result.run_id)) == "not-claimed"  # a duplicate delivery is a no-op
    run = ProcessRun.objects.get(id=result.run_id)
    assert run.status == "succeeded" and run.outputs == {"string_input": "later"}


@pytest.mark.django_db(transaction=True)
def test_sync_run_past_its_deadline_continues_as_a_job(principal, settings):
    settings.HONUA = {**settings.HONUA, "SYNC_DEADLINE_SECONDS": 0.3}
    started = time.monotonic()
    result = run_submit(_request(principal, string_input="slow", pause=1.5))
    assert time.monotonic() - started < 1.2
    assert result.status is RunStatus.RUNNING and result.mode is ExecutionMode.ASYNC
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        run = ProcessRun.objects.get(id=result.run_id)
        if run.status == "succeeded":
            break
        time.sleep(0.1)
    assert run.status == "succeeded" and run.outputs == {"string_input": "slow"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("inputs", "error"),
    [
        ({}, MissingParameter),
        ({"string_input": "x", "nope": 1}, UnknownParameter),
        ({"string_input": 5}, Exception),
        ({"string_input": "x", "pause": 500}, Exception),
    ],
)
def test_invalid_inputs_are_refused_and_create_nothing(principal, inputs, error):
    before = ProcessRun.objects.count()
    with pytest.raises(error):
        run_submit(_request(principal, **inputs))
    assert ProcessRun.objects.count() == before


@pytest.mark.django_db
def test_invalid_geometry_and_input_limits_create_nothing(principal):
    broken = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}, "properties": {}}]}
    with pytest.raises(InvalidGeometry, match="closed|at least 4"):
        run_submit(_request(principal, "convex_hull", features=broken))
    defn = ProcessDefinition.objects.get(process_id="convex_hull", is_current=True)
    defn.limits = {"max_features": 2}
    defn.save()
    from controlplane.services.policy import policy_cache_clear

    policy_cache_clear()
    many = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [i, 0]}, "properties": {}} for i in range(3)],
    }
    with pytest.raises(InputLimitExceeded, match="3 features exceed the limit of 2"):
        run_submit(_request(principal, "convex_hull", features=many))
    assert not ProcessRun.objects.exists()


@pytest.mark.django_db
def test_unknown_and_disabled_processes(principal):
    with pytest.raises(NoSuchProcess):
        run_submit(_request(principal, "no_such_thing"))
    tenant = Tenant.objects.get(slug=principal.tenant)
    TenantPolicyOverride.objects.create(tenant=tenant, process_id="echo", enabled=False)
    from controlplane.services.policy import policy_cache_clear

    policy_cache_clear()  # the tenant's policy (overrides included) was cached by the first call
    with pytest.raises(NoSuchProcess):
        run_submit(_request(principal, string_input="x"))


@pytest.mark.django_db(transaction=True)
def test_tier_fallback_is_recorded_and_no_tier_fails_with_reasons(principal):
    tenant = Tenant.objects.get(slug=principal.tenant)
    override = TenantPolicyOverride.objects.create(tenant=tenant, process_id="echo", tier_order=["postgis", "inprocess"])
    result = run_submit(_request(principal, string_input="x"))
    run = ProcessRun.objects.get(id=result.run_id)
    assert [t["outcome"] for t in run.tiers_tried] == ["skipped", "used"]
    assert "postgis" in run.tiers_tried[0]["reason"] and run.tier_used == "inprocess"
    override.tier_order = ["postgis", "batch"]
    override.save()
    from controlplane.services.policy import policy_cache_clear

    policy_cache_clear()
    result = run_submit(_request(principal, string_input="x"))
    assert result.status is RunStatus.FAILED
    assert result.error["code"] == "no-tier-available"
    assert "postgis" in result.error["message"] and "batch" in result.error["message"]


@pytest.mark.django_db
def test_mode_must_be_supported(principal):
    defn = ProcessDefinition.objects.get(process_id="echo", is_current=True)
    spec = dict(defn.spec)
    spec["modes"] = ["async"]
    spec["default_mode"] = "async"
    defn.spec = spec
    defn.default_mode = "async"
    defn.save()
    from controlplane.services.policy import policy_cache_clear

    policy_cache_clear()
    # A single-mode process runs in its mode whatever the client asked (OGC rule).
    assert run_submit(_request(principal, mode=ExecutionMode.SYNC, string_input="x")).mode is ExecutionMode.ASYNC
    spec["modes"] = ["async", "sync"]
    defn.spec = spec
    defn.save()
    policy_cache_clear()
    assert run_submit(_request(principal, string_input="x")).mode is ExecutionMode.ASYNC  # the default
    with pytest.raises(ModeNotSupported):
        spec["modes"] = ["async"]
        spec2 = {**spec, "modes": ["async"]}
        defn.spec = spec2
        defn.save()
        policy_cache_clear()
        from controlplane.services.execution import schedule_mode
        from controlplane.services.policy import process_resolve

        resolved = process_resolve(principal=principal, process_id="echo")
        object.__setattr__(resolved.spec, "modes", (ExecutionMode.ASYNC, ExecutionMode.ASYNC))
        schedule_mode(resolved=resolved, requested=ExecutionMode.SYNC)


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []
    fail_first = 0

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.fail_first > 0:
            _Receiver.fail_first -= 1
            self.send_response(503)
        else:
            _Receiver.received.append({"path": self.path, "body": orjson.loads(body)})
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.django_db(transaction=True)
def test_callbacks_are_delivered_with_retries_and_recorded(principal, settings, monkeypatch):
    from controlplane.services import notifications

    monkeypatch.setattr(notifications, "_builders", dict(notifications._builders))
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_HOSTS": ["127.0.0.1"], "CALLBACK_ATTEMPTS": 3}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    _Receiver.received, _Receiver.fail_first = [], 1
    notifications.payload_builder_register("ogc", lambda result, values, event: {"event": event, "values": values})
    try:
        result = run_submit(
            ExecutionRequest(
                process_id="echo", inputs={"string_input": "cb"}, principal=principal, surface=Surface.OGC,
                mode=ExecutionMode.ASYNC,
                subscriber=Subscriber(success_uri=f"{base}/ok", in_progress_uri=f"{base}/progress"),
            )
        )
        run_execute(str(result.run_id))
        attempts = notifications.run_notify(run_id=str(result.run_id), event="success")
    finally:
        server.shutdown()
    assert [a.get("status") for a in attempts] == [503, 204]
    assert _Receiver.received[-1] == {"path": "/ok", "body": {"event": "success", "values": {"string_input": "cb"}}}
    run = ProcessRun.objects.get(id=result.run_id)
    assert [c["status"] for c in run.callbacks if c["event"] == "success"][-2:] == [503, 204]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8000/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
    ],
)
def test_outbound_guard_refuses_internal_targets(url, settings):
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_HOSTS": []}
    with pytest.raises(OutboundRefused):
        outbound_check(url)
