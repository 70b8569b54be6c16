"""Shared fixtures: the real PostGIS test database with the catalog synced and a tenant."""

from __future__ import annotations

import pytest
from django.conf import settings

from controlplane.contracts import Principal
from tests.aws import aws, moto_server, s3_bucket, s3_store  # noqa: F401  (fixtures: AWS through moto)


def _drop_stale_test_databases() -> None:
    """Drop test_honua_<pid> databases of pytest processes that no longer exist."""
    import os

    import psycopg
    from django.db import connection

    s = connection.settings_dict
    try:
        with psycopg.connect(
            host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"], dbname="postgres",
            autocommit=True,
        ) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'test_honua_%%'")]
            for name in names:
                pid = name.rsplit("_", 1)[-1]
                if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass


def pytest_sessionstart(session) -> None:
    _drop_stale_test_databases()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # noqa: F811  (extends pytest-django's)
    """Sync the catalog and create the default tenant once per test session."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("sync_catalog", verbosity=0)
        call_command("ensure_demo", verbosity=0)
    yield
    # Threads of this process (lease keeper, inline pool) keep connections open; end them so
    # the test database can be dropped.
    from django.db import connection

    from controlplane.services.leases import keeper

    keeper.stop()
    with django_db_blocker.unblock(), connection.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    from controlplane.services.policy import policy_cache_clear

    policy_cache_clear()
    yield
    policy_cache_clear()


@pytest.fixture
def principal() -> Principal:
    return Principal(tenant=settings.HONUA["DEFAULT_TENANT"], username="tester")


@pytest.fixture
def honua_catalog(django_db_blocker):
    """The catalog and demo tenant, also after a transactional test flushed the tables."""
    from django.core.management import call_command

    from controlplane.models import ProcessDefinition
    from controlplane.services.policy import policy_cache_clear

    with django_db_blocker.unblock():
        if not ProcessDefinition.objects.exists():
            call_command("sync_catalog", verbosity=0)
            call_command("ensure_demo", verbosity=0)
            # A live server's request in between (a client still polling an earlier test's
            # job) may have cached the empty catalog.
            policy_cache_clear()
