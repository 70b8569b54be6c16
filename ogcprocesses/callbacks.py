"""Payloads POSTed to an OGC subscriber (class ``callback``); delivery is the control plane's.

success -> the results document; failed -> the exception document; in-progress -> statusInfo.
Links are absolute when ``HONUA["BASE_URL"]`` is set (there is no request in a worker).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from controlplane.contracts import ExecutionResult
from controlplane.services.artifacts import artifact_link
from ogcprocesses import translate


def _base() -> str:
    return str(settings.HONUA.get("BASE_URL") or "").rstrip("/")


def _urls() -> translate.Urls:
    return translate.Urls(root=_base() + reverse("ogcprocesses:landing"))


def _artifact_href(artifact_id: str) -> str:
    return str(artifact_link(artifact_id, base_url=_base() + "/")["href"])


def build_payload(result: ExecutionResult, values: dict[str, Any], event: str) -> dict[str, Any]:
    """The body of the ``event`` ("success" | "failed" | "in_progress") callback of a run."""
    urls = _urls()
    if event == "success":
        return translate.results_document(result, values, _artifact_href)
    if event == "failed":
        exc = translate.error_from_result(result, urls)
        doc = translate.exception_document(
            code=exc.code, title=exc.title, status=exc.status, detail=exc.message,
            instance=urls.job(result.run_id), details=exc.details,
        )
        return {**doc, "jobID": str(result.run_id), "processID": result.process_id}
    return translate.status_info(result, urls)
