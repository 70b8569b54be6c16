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
