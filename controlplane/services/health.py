"""Readiness: can this process serve requests now? The database, the task broker and the
artifact stores, each checked quickly and reported with its duration.

A check reports, it does not raise: a failure is the check's result, logged with its
details (the answer itself names only the kind of failure: /readyz is unauthenticated).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from controlplane.services.artifacts import StoreNotReady, artifact_stores

log = logging.getLogger("honua.health")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    duration_ms: float
    error: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"status": "ok" if self.ok else "fail", "duration_ms": round(self.duration_ms, 2)}
        if self.error:
            doc["error"] = self.error
        doc.update(self.facts)
        return doc


def _timeout_ms() -> int:
    return max(1, int(float(settings.HONUA.get("READYZ_TIMEOUT_SECONDS", 2.0)) * 1000))


def _bounded_query(sql: str, using: str = DEFAULT_DB_ALIAS) -> Any:
    """One statement under a short statement timeout (local to its own transaction)."""
    with transaction.atomic(using=using), connections[using].cursor() as cur:
        cur.execute("SELECT set_config('statement_timeout', %s, true)", [f"{_timeout_ms()}ms"])
        cur.execute(sql)
        return cur.fetchone()


def check_database() -> dict[str, Any]:
    """SELECT 1. A connection that broke since its last use (the server restarted) is
    replaced once, so one stale connection does not fail the probe."""
    try:
        _bounded_query("SELECT 1")
    except DatabaseError:
        connection = connections[DEFAULT_DB_ALIAS]
        if connection.in_atomic_block:
            raise
        connection.close()
        _bounded_query("SELECT 1")
    return {}


def _cluster_count(broker: Any) -> int | None:
    """Live qcluster count from django-q2's cluster stats, when they are observable here:
    they live in Django's cache, and a process-local cache only ever shows this process."""
    from django.core.cache import caches
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache
    from django_q.conf import Conf
    from django_q.status import Stat

    if isinstance(caches[Conf.CACHE], LocMemCache | DummyCache):
        return None
    return len(Stat.get_all(broker))


def check_broker() -> dict[str, Any]:
    """The django-q2 broker answers. With the ORM broker that is its queue table, read under
    the statement timeout; the facts are the tasks waiting and, where django-q2 can tell, the
    live clusters. No cluster does not make this process unready: sync runs still execute
    here and async runs wait in the durable queue (see README, Operations)."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    broker = get_broker()
    if Conf.ORM:
        # The ORM broker's own ping() answers True without a query.
        row = _bounded_query("SELECT count(*) FROM django_q_ormq WHERE lock <= now()", using=Conf.ORM)
        waiting = int(row[0])
        kind = "orm"
    else:
        if not broker.ping():
            raise ConnectionError("the broker did not answer")
        waiting = int(broker.queue_size() or 0)
        kind = type(broker).__name__.lower()
    return {"broker": kind, "tasks_waiting": waiting, "clusters": _cluster_count(broker)}


def check_artifacts() -> dict[str, Any]:
    """Every artifact store takes writes."""
    facts: dict[str, Any] = {}
    for store in artifact_stores():
        facts.update(store.check())
    return facts


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": check_database,
    "broker": check_broker,
    "artifacts": check_artifacts,
}


def readiness_check() -> list[CheckResult]:
    """Run every readiness check; each is timed and reported, none raises."""
    results = []
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            facts = check()
        except StoreNotReady as exc:
            results.append(CheckResult(name, False, (time.perf_counter() - started) * 1000, exc.args[0]))
            log.warning("readiness: %s is not ready: %s", name, exc)
            continue
        except Exception as exc:  # a probe reports any failure of what it probes
            # The driver's error class (QueryCanceled, ConnectionTimeout...), not Django's wrapper.
            kind = type(exc.__cause__ if isinstance(exc, DatabaseError) and exc.__cause__ else exc).__name__
            results.append(CheckResult(name, False, (time.perf_counter() - started) * 1000, kind))
            log.warning("readiness: %s check failed", name, exc_info=True)
            continue
        results.append(CheckResult(name, True, (time.perf_counter() - started) * 1000, facts=facts))
    return results
