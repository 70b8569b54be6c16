"""OGC API - Processes views: parse, make the control-plane call, render (translate.py)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.contracts import Principal
from controlplane.selectors import (
    process_get,
    processes_for_principal,
    run_get,
    run_outputs,
    runs_for_tenant,
)
from controlplane.services.artifacts import artifact_link
from controlplane.services.auth import principal_from_http
from controlplane.services.execution import run_submit
from controlplane.services.jobs import job_dismiss
from ogcprocesses import openapi, translate
from ogcprocesses.errors import ogc_exception_handler
from ogcprocesses.negotiation import OgcContentNegotiation
from ogcprocesses.parsers import AnyAsJSONParser, ExecuteJSONParser, request_body, request_bound
from ogcprocesses.renderers import OgcHTMLRenderer, OgcJSONRenderer, OpenAPIRenderer

TITLE = "Honua geoprocessing (OGC API - Processes)"
DESCRIPTION = "Spatial processing on the cheapest execution tier that can do it."
API_VERSION = "1.0.0"


class OgcView(APIView):
    """Base of the OGC views: renderers, negotiation, the OGC exception handler."""

    renderer_classes = [OgcJSONRenderer, OgcHTMLRenderer]
    parser_classes = [ExecuteJSONParser, AnyAsJSONParser]
    content_negotiation_class = OgcContentNegotiation
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    template_name = ""
    page_title = "OGC API - Processes"

    def get_exception_handler(self) -> Any:
        return ogc_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        request_bound(request)
        super().initial(request, *args, **kwargs)

    @property
    def urls(self) -> translate.Urls:
        return translate.Urls(root=self.request.build_absolute_uri(reverse("ogcprocesses:landing")))

    @cached_property
    def principal(self) -> Principal:
        """The caller: ``X-API-Key``, ``Authorization: Bearer`` (token or key), a browser
        session, or anonymous."""
        return principal_from_http(self.request._request)

    def artifact_href(self, artifact_id: str) -> str:
        return str(artifact_link(artifact_id, base_url=self.request.build_absolute_uri("/"))["href"])

    def render_wire(self, wire: translate.Wire) -> HttpResponseBase:
        response: HttpResponseBase
        if wire.data is not None:
            response = Response(wire.data, status=wire.status, headers=wire.headers)
        else:
            response = HttpResponse(wire.body or b"", status=wire.status, content_type=wire.content_type)
            for key, value in wire.headers.items():
                response[key] = value
        if wire.links:
            response["Link"] = translate.link_header(wire.links)
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        data = getattr(response, "data", None)
        if "Link" not in response and isinstance(data, dict) and isinstance(data.get("links"), list):
            response["Link"] = translate.link_header([x for x in data["links"] if "rel" in x][:20])
        response["Access-Control-Expose-Headers"] = "Location, Link, Preference-Applied, Retry-After, traceparent"
        return response


class LandingPageView(OgcView):
    template_name = "ogcprocesses/landing.html"

    def get(self, request: Request) -> HttpResponseBase:
        return Response(translate.landing_page(self.urls, title=TITLE, description=DESCRIPTION))


class ConformanceDeclarationView(OgcView):
    template_name = "ogcprocesses/conformance.html"
    page_title = "Conformance"

    def get(self, request: Request) -> HttpResponseBase:
        return Response(translate.conformance())


class APIDefinitionView(OgcView):
    renderer_classes = [OpenAPIRenderer, OgcJSONRenderer, OgcHTMLRenderer]
    template_name = "ogcprocesses/api.html"
    page_title = "API definition"

    def get(self, request: Request) -> HttpResponseBase:
        specs = processes_for_principal(principal=self.principal)
        return Response(openapi.openapi_document(specs, self.urls, title=TITLE, version=API_VERSION))


class ProcessListView(OgcView):
    template_name = "ogcprocesses/processes.html"
    page_title = "Processes"

    def get(self, request: Request) -> HttpResponseBase:
        specs = processes_for_principal(principal=self.principal)
        return Response(translate.process_list(specs, self.urls, request.query_params))


class ProcessDescriptionView(OgcView):
    template_name = "ogcprocesses/process.html"
    page_title = "Process"

    def get(self, request: Request, process_id: str) -> HttpResponseBase:
        spec = process_get(principal=self.principal, process_id=process_id)
        return Response(translate.process_description(spec, self.urls))


class ProcessExecuteView(OgcView):
    template_name = "ogcprocesses/job.html"
    page_title = "Job"

    def post(self, request: Request, process_id: str) -> HttpResponseBase:
        principal = self.principal
        # The description is read first: inputs are translated by their declared types.
        spec = process_get(principal=principal, process_id=process_id)
        body = request_body(request)
        submission = translate.execute_request(
            spec,
            body.document,
            principal=principal,
            prefer=request.headers.get("Prefer", ""),
            request_bytes=body.size,
            trace_header=request.headers.get("traceparent"),
            own_root=self.urls.root,
        )
        result = run_submit(submission.request)
        values = result.outputs or {}
        if translate.needs_stored_outputs(result):
            result, values = run_outputs(principal=principal, run_id=result.run_id)
        return self.render_wire(
            translate.execute_response(result, values, submission, self.urls, self.artifact_href)
        )


class JobListView(OgcView):
    template_name = "ogcprocesses/jobs.html"
    page_title = "Jobs"

    def get(self, request: Request) -> HttpResponseBase:
        filters, limit, offset = translate.job_filters(request.query_params)
        page = runs_for_tenant(principal=self.principal, filters=filters, limit=limit, offset=offset)
        return Response(translate.job_list(page, self.urls, request.query_params))


class JobStatusView(OgcView):
    """GET: the job's statusInfo. DELETE: dismiss (cancel if active, drop results)."""

    template_name = "ogcprocesses/job.html"
    page_title = "Job"

    def get(self, request: Request, job_id: str) -> HttpResponseBase:
        result = run_get(principal=self.principal, run_id=job_id)
        return Response(translate.status_info(result, self.urls))

    def delete(self, request: Request, job_id: str) -> HttpResponseBase:
        result = job_dismiss(principal=self.principal, run_id=job_id)
        return Response(translate.status_info(result, self.urls))


class JobResultsView(OgcView):
    def get(self, request: Request, job_id: str) -> HttpResponseBase:
        result, values = run_outputs(principal=self.principal, run_id=job_id)
        return self.render_wire(translate.results_response(result, values, self.urls, self.artifact_href))


class NotFoundView(OgcView):
    """Any other path under the API root: an OGC 404, not Django's HTML page."""

    def get(self, request: Request, rest: str = "") -> HttpResponseBase:
        raise Http404(f"no resource at {request.path}")

    post = put = patch = delete = get
