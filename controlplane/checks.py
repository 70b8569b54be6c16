"""System checks: an invalid catalog fails ``manage.py check`` (and the tests)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register


@register("honua")
def catalog_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from controlplane.services.catalog import load_catalog

    _, problems = load_catalog()
    return [Error(str(p), id="honua.E001", hint="Fix the YAML in controlplane/catalog/.") for p in problems]
