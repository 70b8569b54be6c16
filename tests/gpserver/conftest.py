"""Fixtures of the GPServer tests: the catalog and GP services, a tier that runs echo, a worker."""

from __future__ import annotations

import pytest
from django.test import Client

from executors.base import Executor
from tests.gpserver.support import GPClient
from tests.ogcprocesses.conftest import echo_tier, worker  # noqa: F401  (shared fixtures)


@pytest.fixture
def gp(honua_catalog: None, echo_tier: Executor) -> None:  # noqa: F811
    """The catalog (echo included), the shipped GP services and the demo tenant."""


@pytest.fixture
def api(client: Client) -> GPClient:
    return GPClient(client)
