"""The job browser's views: parse, make one control-plane call, render a template."""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from browser import translate
from browser.errors import error_response
from controlplane.contracts import Principal, ProcessSpec, RunStatus
from controlplane.exceptions import HonuaError
from controlplane.selectors import (
    process_get,
    processes_for_principal,
    run_get,
    run_inputs,
    run_ledger,
    run_outputs,
    runs_for_tenant,
)
from controlplane.services.artifacts import artifact_link
from controlplane.services.auth import principal_from_http
from controlplane.services.execution import run_submit
from controlplane.services.jobs import job_cancel, job_dismiss


class BrowserView(LoginRequiredMixin, View):
    """Base of the job browser's pages: login required, HonuaError rendered by one handler."""

    request: HttpRequest

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        except HonuaError as exc:  # the one handler, as DRF's is for the API views
            return self.handle_error(exc)

    def handle_error(self, exc: HonuaError) -> HttpResponseBase:
        return error_response(self.request, exc)

    @cached_property
    def principal(self) -> Principal:
        """The logged-in user's membership (tenant and role); a user of no tenant browses as
        the anonymous caller."""
        return principal_from_http(self.request)

    def visible_spec(self, process_id: str) -> ProcessSpec | None:
        """The process's description if the principal may still see it (a job outlives access)."""
        return next((s for s in processes_for_principal(principal=self.principal) if s.id == process_id), None)

    def page(self, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
        return render(self.request, template, {"principal": self.principal, **context}, status=status)


class HomeView(BrowserView):
    def get(self, request: HttpRequest) -> HttpResponseBase:
        return HttpResponseRedirect(reverse("browser:job-list"))


class JobListView(BrowserView):
    def get(self, request: HttpRequest) -> HttpResponseBase:
        shown, filters = translate.list_query(request.GET)
        page = runs_for_tenant(
            principal=self.principal, filters=filters, limit=translate.PAGE_SIZE, offset=shown.offset
        )
        here = reverse("browser:job-list")
        more = page.next_cursor is not None
        return self.page("browser/jobs.html", {
            "title": "Jobs",
            "query": shown,
            "jobs": [translate.job_row(r) for r in page.results],
            "processes": sorted(s.id for s in processes_for_principal(principal=self.principal)),
            "statuses": translate.status_choices(),
            "surfaces": translate.surface_choices(),
            "next_href": f"{here}?{urlencode(shown.params(offset=shown.offset + translate.PAGE_SIZE))}" if more else "",
            "prev_href": (
                f"{here}?{urlencode(shown.params(offset=page.prev_offset or 0))}" if page.prev_offset is not None else ""
            ),
            "first": shown.offset + 1,
            "last": shown.offset + len(page.results),
        })


class JobDetailView(BrowserView):
    def get(self, request: HttpRequest, job_id: str) -> HttpResponseBase:
        principal = self.principal
        result = run_get(principal=principal, run_id=job_id, with_outputs=True)
        values: dict[str, Any] = {}
        if result.status is RunStatus.SUCCEEDED and not result.dismissed and result.outputs is not None:
            result, values = run_outputs(principal=principal, run_id=result.run_id)
        base = request.build_absolute_uri("/")
        detail = translate.job_detail(
            result,
            spec=self.visible_spec(result.process_id),
            ledger=run_ledger(principal=principal, run_id=result.run_id),
            inputs=run_inputs(principal=principal, run_id=result.run_id),
            outputs=values,
            output_href=lambda name, fmt: reverse("browser:job-output", args=[result.run_id, name]) + f"?f={fmt}",
            artifact_href=lambda aid: artifact_link(aid, base_url=base)["href"],
        )
        return self.page("browser/job.html", {"title": f"Job {result.run_id}", **detail})


class JobStatusView(BrowserView):
    """The job page's poll: status, progress and messages as JSON."""

    def handle_error(self, exc: HonuaError) -> HttpResponseBase:
        return JsonResponse({"error": exc.to_json()}, status=exc.status)

    def get(self, request: HttpRequest, job_id: str) -> HttpResponseBase:
        result = run_get(principal=self.principal, run_id=job_id)
        response = JsonResponse(translate.job_status(result))
        response["Cache-Control"] = "no-store"
        return response


class JobCancelView(BrowserView):
    def post(self, request: HttpRequest, job_id: str) -> HttpResponseBase:
        result = job_cancel(principal=self.principal, run_id=job_id)
        messages.info(request, f"Cancellation requested: the job is {translate.status_badge(result)['label'].lower()}.")
        return HttpResponseRedirect(reverse("browser:job", args=[result.run_id]), status=303)


class JobDismissView(BrowserView):
    def post(self, request: HttpRequest, job_id: str) -> HttpResponseBase:
        result = job_dismiss(principal=self.principal, run_id=job_id)
        messages.info(request, "The job was dismissed: it was stopped if it ran, and its results were removed.")
        return HttpResponseRedirect(reverse("browser:job", args=[result.run_id]), status=303)


class JobOutputView(BrowserView):
    """One output of a finished job as a file (``?f=geojson|esrijson|raw``)."""

    def get(self, request: HttpRequest, job_id: str, name: str) -> HttpResponseBase:
        result, values = run_outputs(principal=self.principal, run_id=job_id)
        body = translate.output_file(
            result, self.visible_spec(result.process_id), name, values, request.GET.get("f", "geojson")
        )
        response = HttpResponse(body.data, content_type=body.media_type)
        response["Content-Disposition"] = f'attachment; filename="{body.filename}"'
        return response


class ProcessListView(BrowserView):
    def get(self, request: HttpRequest) -> HttpResponseBase:
        specs = processes_for_principal(principal=self.principal)
        return self.page("browser/processes.html", {"title": "Processes", "processes": translate.process_rows(specs)})


class ProcessDetailView(BrowserView):
    """GET: the description and the form. POST: run it, then land on the job's page."""

    form_data: dict[str, Any] | None = None

    def handle_error(self, exc: HonuaError) -> HttpResponseBase:
        if self.request.method != "POST" or exc.status >= 500 or exc.status in (401, 404):
            return super().handle_error(exc)
        # A refused run shows the form again, filled in as sent, with the reason.
        spec = process_get(principal=self.principal, process_id=self.kwargs["process_id"])
        return self.form_page(spec, error=exc, status=exc.status)

    def form_page(self, spec: ProcessSpec, *, error: HonuaError | None = None, status: int = 200) -> HttpResponse:
        data = self.request.POST.dict() if self.request.method == "POST" else None
        return self.page("browser/process.html", {
            "title": spec.title or spec.id,
            "spec": spec,
            "inputs": translate.input_rows(spec),
            "fields": translate.form_fields(spec, data),
            "modes": translate.mode_choices(spec, (data or {}).get("mode")),
            "error": error,
            "ogc_href": reverse("ogcprocesses:process", args=[spec.id]) + "?f=html",
        }, status=status)

    def get(self, request: HttpRequest, process_id: str) -> HttpResponseBase:
        return self.form_page(process_get(principal=self.principal, process_id=process_id))

    def post(self, request: HttpRequest, process_id: str) -> HttpResponseBase:
        principal = self.principal
        spec = process_get(principal=principal, process_id=process_id)
        files = {
            name: translate.UploadedFile(f.read(), f.content_type or "", f.name or name)
            for name in request.FILES
            for f in request.FILES.getlist(name)[:1]
        }
        submission = translate.execute_request(
            spec, request.POST, files, principal=principal,
            request_bytes=int(request.META.get("CONTENT_LENGTH") or 0),
            trace_header=request.headers.get("traceparent"),
        )
        result = run_submit(submission)
        return HttpResponseRedirect(reverse("browser:job", args=[result.run_id]), status=303)
