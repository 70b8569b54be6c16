"""Fixtures of the job browser tests: a signed-in member of the demo tenant, a live server
with a job worker (for the tests in Chromium)."""

from __future__ import annotations

import pytest
from django.test import Client

from controlplane.models import Membership
from tests.gpserver.interop.conftest import job_worker  # noqa: F401  (a shared fixture)
from tests.identity import PASSWORD, fast_passwords, member  # noqa: F401  (fixtures)
from tests.ogcprocesses.conftest import echo_tier  # noqa: F401  (a shared fixture)


@pytest.fixture
def alice(honua_catalog: None, fast_passwords: None) -> Membership:  # noqa: F811
    """An editor of the demo tenant (password: tests.identity.PASSWORD)."""
    return member("demo", "alice", "editor")


@pytest.fixture
def signed_in(client: Client, alice: Membership) -> Client:
    """A Django test client with alice's browser session."""
    assert client.login(username="alice", password=PASSWORD)
    return client
