"""/healthz, /readyz and /metrics: what they answer, and real failures making /readyz 503."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

LIVE = "/healthz"
READY = "/readyz"
METRICS = "/metrics"


def test_liveness_touches_no_database(client: Client):
    # No django_db mark: any query here would fail the test.
    response = client.get(LIVE)
    assert response.status_code == 200 and json.loads(response.content) == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_probes_answer_whatever_host_the_prober_names(client: Client):
    # Kubelet and Prometheus address a pod by its IP, which ALLOWED_HOSTS does not list.
    assert client.get(LIVE, headers={"Host": "10.12.0.7:8000"}).status_code == 200
    assert client.get("/ogcapi/", headers={"Host": "10.12.0.7:8000"}).status_code == 400


def test_other_methods_are_not_allowed(client: Client):
    assert client.post(LIVE).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_ready_when_database_broker_and_artifact_store_answer(client: Client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "artifacts"  # not there yet: a fresh install
    response = client.get(READY)
    assert response.status_code == 200, response.content
    doc = json.loads(response.content)
    assert doc["status"] == "ready"
    assert set(doc["checks"]) == {"database", "broker", "artifacts"}
    for check in doc["checks"].values():
        assert check["status"] == "ok" and isinstance(check["duration_ms"], float)
    assert doc["checks"]["broker"]["broker"] == "orm"
    assert doc["checks"]["broker"]["tasks_waiting"] == 0
    # django-q2 keeps cluster stats in Django's cache, process-local here: not observable.
    assert doc["checks"]["broker"]["clusters"] is None
    assert doc["checks"]["artifacts"]["store"] == "local"
    assert (tmp_path / "artifacts").is_dir() and not list((tmp_path / "artifacts").iterdir())


@pytest.mark.django_db(transaction=True)
def test_unready_when_the_artifact_root_is_a_file(client: Client, settings, tmp_path):
    root = tmp_path / "artifacts"
    root.write_text("not a directory")
    settings.MEDIA_ROOT = root
    response = client.get(READY)
    assert response.status_code == 503
    doc = json.loads(response.content)
    assert doc["status"] == "unavailable"
    assert doc["checks"]["artifacts"]["status"] == "fail"
    assert "artifact root" in doc["checks"]["artifacts"]["error"]
    assert doc["checks"]["database"]["status"] == "ok" and doc["checks"]["broker"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_unready_within_the_timeout_when_the_queue_table_is_locked(client: Client, settings):
    settings.HONUA = {**settings.HONUA, "READYZ_TIMEOUT_SECONDS": 0.3}
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"], dbname=s["NAME"]
    ) as other:
        other.execute("LOCK TABLE django_q_ormq IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = client.get(READY)
        took = time.monotonic() - started
        other.rollback()
    assert response.status_code == 503
    doc = json.loads(response.content)
    assert doc["checks"]["broker"]["status"] == "fail"
    assert doc["checks"]["broker"]["error"] == "QueryCanceled"  # the statement timeout
    assert doc["checks"]["database"]["status"] == "ok"
    assert took < 2.0
    assert client.get(READY).status_code == 200  # lock gone, ready again


@pytest.mark.django_db(transaction=True)
def test_a_connection_broken_since_its_last_use_does_not_fail_readiness(client: Client):
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"], dbname=s["NAME"],
        autocommit=True,
    ) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    response = client.get(READY)
    assert response.status_code == 200, response.content
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        assert cur.fetchone()[0] != pid


@pytest.mark.django_db(transaction=True)
def test_metrics_are_prometheus_text_with_the_ledger_gauges(client: Client):
    response = client.get(METRICS, headers={"Host": "10.12.0.7:9000"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(response.content.decode())}
    assert {
        "honua_runs", "honua_queue_depth", "honua_queue_oldest_age_seconds", "honua_class_capacity_slots",
        "honua_class_free_slots", "honua_ledger_scrape_success",
    } <= names
    openmetrics = client.get(METRICS, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.content.endswith(b"# EOF\n")


@pytest.mark.django_db(transaction=True)
def test_metrics_token_is_required_when_set(client: Client, settings):
    settings.HONUA = {**settings.HONUA, "METRICS_TOKEN": "s3cret"}
    denied = client.get(METRICS)
    assert denied.status_code == 401 and denied["WWW-Authenticate"].startswith("Bearer")
    assert client.get(METRICS, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(METRICS, headers={"Authorization": "Basic s3cret"}).status_code == 401
    allowed = client.get(METRICS, headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == 200 and b"honua_queue_depth" in allowed.content
    # The probes stay open.
    assert client.get(LIVE).status_code == 200 and client.get(READY).status_code == 200
