"""Shared fixtures: the real PostGIS test database with the catalog synced and a tenant."""

from __future__ import annotations

import pytest
from django.conf import settings

from controlplane.contracts import Principal


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # noqa: F811  (extends pytest-django's)
    """Sync the catalog and create the default tenant once per test session."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("sync_catalog", verbosity=0)
        call_command("ensure_demo", verbosity=0)


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

    with django_db_blocker.unblock():
        if not ProcessDefinition.objects.exists():
            call_command("sync_catalog", verbosity=0)
            call_command("ensure_demo", verbosity=0)
