"""System checks: an invalid catalog fails ``manage.py check`` (and the tests)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register


@register("honua")
def catalog_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from controlplane.services.catalog import load_catalog
    from controlplane.services.gpservices import load_gpservices

    docs, problems = load_catalog()
    errors = [Error(str(p), id="honua.E001", hint="Fix the YAML in controlplane/catalog/.") for p in problems]
    _, service_problems = load_gpservices(process_ids=set(docs))
    errors.extend(
        Error(str(p), id="honua.E002", hint="Fix the YAML in controlplane/catalog/gpservices/.")
        for p in service_problems
    )
    return errors


@register("honua")
def batch_tasks_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Every batch handler of the catalog names a batch task that exists (signatures are
    checked per run: a missing one fails that run, not the server's start)."""
    from controlplane.services.catalog import load_catalog
    from executors.batch.executor import task_dirs
    from executors.batch.manifest import task_dir

    docs, _ = load_catalog()
    errors = []
    for pid, doc in docs.items():
        handler = (doc.get("handlers") or {}).get("batch")
        if handler and task_dir(handler, task_dirs()) is None:
            errors.append(
                Error(f"process {pid!r}: batch handler {handler!r} is not a batch task", id="honua.E003",
                      hint="Add executors/batch/tasks/<handler>/ or fix the YAML.")
            )
    return errors
