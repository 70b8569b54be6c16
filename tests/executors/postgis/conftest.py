"""Fixtures of postgis tier tests: call honua_gp functions as the least-privilege role."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from executors.postgis.sqlfiles import role_name

Run = Callable[..., list[tuple[Any, ...]]]


def run_as_role(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """One statement as the execution role, in a savepoint that is rolled back."""
    with transaction.atomic():
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cur:
            cur.execute("SELECT set_config('role', %s, true)", [role_name()])
            cur.execute(sql, list(params), binary=True)
            rows = cur.fetchall() if cur.description else []
        transaction.set_rollback(True)
    return rows


@pytest.fixture
def as_role(db) -> Run:
    """``as_role(sql, params)``: rows of ``sql`` run as the role (errors propagate)."""
    return run_as_role
