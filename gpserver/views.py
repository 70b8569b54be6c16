"""GeoservicesREST GPServer views: parse the form, call the control plane, render (translate.py).

Every resource answers GET and POST (form-encoded or multipart) with ``f=json|pjson|html``;
every error is Esri's envelope with HTTP 200 (``gpserver.errors``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import cached_property
from typing import Any

from django.http import FileResponse, Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.contracts import (
    ExecutionMode,
    ExecutionResult,
    GPServiceSpec,
    ParamSpec,
    Principal,
    ProcessSpec,
)
from controlplane.exceptions import MissingParameter, NoSuchService
from controlplane.selectors import (
    gp_folders,
    gp_service_get,
    gp_services,
    gp_task_get,
    run_get,
    run_inputs,
    run_outputs,
    upload_get,
    upload_stream,
    uploads_info,
)
from controlplane.services.artifacts import artifact_link
from controlplane.services.auth import principal_from_http, token_generate, token_minutes
from controlplane.services.execution import run_submit
from controlplane.services.jobs import job_cancel, job_dismiss
from controlplane.services.layers import layer_ingest_upload
from controlplane.services.uploads import (
    upload_commit,
    upload_create,
    upload_delete,
    upload_part,
    upload_register,
)
from gpserver import formats, tokens, translate
from gpserver.errors import gp_exception_handler
from gpserver.negotiation import GPContentNegotiation
from gpserver.parsers import PARSERS, form_params, request_bound, request_bytes
from gpserver.renderers import (
    GPGeoJSONRenderer,
    GPHTMLRenderer,
    GPJSONRenderer,
    GPKMZRenderer,
    GPPrettyJSONRenderer,
)


class GPView(APIView):
    """Base of the GPServer views: renderers, negotiation, the Esri error handler; POST is GET."""

    renderer_classes = [GPJSONRenderer, GPPrettyJSONRenderer, GPHTMLRenderer]
    parser_classes = PARSERS
    content_negotiation_class = GPContentNegotiation
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    template_name = "gpserver/document.html"
    page_title = "ArcGIS REST Services Directory"
    # Runs or changes something (whatever the HTTP method: Esri clients GET execute): a
    # browser session must then POST with its CSRF token.
    changes = False

    def get_exception_handler(self) -> Any:
        return gp_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        request_bound(request)  # before negotiation, which reads the body for its f=
        super().initial(request, *args, **kwargs)

    def post(self, request: Request, **kwargs: Any) -> HttpResponseBase:
        return self.get(request, **kwargs)  # type: ignore[attr-defined, no-any-return]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        renderer = getattr(request, "accepted_renderer", None)
        if isinstance(response, Response) and isinstance(response.data, dict) and "error" in response.data and (
            renderer is not None and renderer.format not in ("json", "pjson", "html")
        ):
            # An error asked for as GeoJSON or KMZ is still Esri's JSON envelope.
            request.accepted_renderer, request.accepted_media_type = GPJSONRenderer(), GPJSONRenderer.media_type
        response = super().finalize_response(request, response, *args, **kwargs)
        # Esri servers allow cross-origin use: web apps built on the Maps SDK call them directly.
        response["Access-Control-Allow-Origin"] = "*"
        return response

    @cached_property
    def principal(self) -> Principal:
        """The caller: a token (``token`` parameter or a bearer header), an API key, a browser
        session, or anonymous."""
        return principal_from_http(self.request._request, token=self.params.get("token"), unsafe=self.changes)

    @property
    def params(self) -> dict[str, str]:
        return form_params(self.request)

    def breadcrumbs(self) -> list[tuple[str, str]]:
        """(label, path) pairs of the Services Directory trail for the HTML pages."""
        crumbs = [("Home", reverse("gpserver:services"))]
        folder = self.kwargs.get("folder")
        if folder:
            crumbs.append((folder, reverse("gpserver:folder", kwargs={"folder": folder})))
        if self.kwargs.get("service"):
            crumbs.append((f"{self.kwargs['service']} (GPServer)", self.service_path()))
        if self.kwargs.get("task"):
            crumbs.append((self.kwargs["task"], f"{self.service_path()}/{self.kwargs['task']}"))
        return crumbs

    # --- services and tasks ------------------------------------------------------------------

    def service_path(self) -> str:
        folder = self.kwargs.get("folder")
        name = self.kwargs["service"]
        return f"{reverse('gpserver:services')}/{folder}/{name}/GPServer" if folder else (
            f"{reverse('gpserver:services')}/{name}/GPServer"
        )

    def layers_root(self) -> str:
        """The root of this server's OGC API, whose ``collections/{id}`` are its layers."""
        return self.request.build_absolute_uri(reverse("ogcprocesses:landing"))

    def service_url(self) -> str:
        return self.request.build_absolute_uri(self.service_path())

    def service(self) -> GPServiceSpec:
        return gp_service_get(
            principal=self.principal, folder=self.kwargs.get("folder") or "", name=self.kwargs["service"]
        )

    def job(self, job_id: str, task: str | None) -> tuple[GPServiceSpec, uuid.UUID, ExecutionResult, ProcessSpec]:
        """The job named in the URL, checked to belong to this service (and task, if named)."""
        gp = self.service()
        run_id = translate.run_id_of(job_id)
        result = run_get(principal=self.principal, run_id=run_id)
        return gp, run_id, result, translate.task_of(result, gp, task, job_id)

    def task_spec(self, service: GPServiceSpec, task: str) -> ProcessSpec:
        return gp_task_get(principal=self.principal, service=service, task=task)

    # --- jobs ----------------------------------------------------------------------------------

    def job_url(self, result: ExecutionResult, spec: ProcessSpec) -> str:
        return f"{self.service_url()}/{spec.id}/jobs/{translate.job_id(result.run_id)}"

    def file_url(self, result: ExecutionResult, spec: ProcessSpec) -> translate.FileUrl:
        """Where a file output can be downloaded: its artifact's signed link, its own href,
        or this job's ``results/<param>/file`` for bytes kept inline."""

        def url(name: str, value: dict[str, Any]) -> str:
            link = result.output_links.get(name) or {}
            artifact = value.get("artifact") or link.get("artifact")
            if artifact:
                return str(artifact_link(str(artifact), base_url=self.request.build_absolute_uri("/"))["href"])
            if value.get("href"):
                return str(value["href"])
            return f"{self.job_url(result, spec)}/results/{names.get(name, name)}/file"

        names = translate.output_names(spec)
        return url


# --- server, folders, services -------------------------------------------------------------------


class InfoView(GPView):
    page_title = "Server information"

    def get(self, request: Request) -> HttpResponseBase:
        token_url = request.build_absolute_uri(reverse("gpserver:generate-token"))
        return Response(translate.server_info(tokens.auth_info(token_url=token_url, minutes=token_minutes(None))))


class TokenGenerateView(GPView):
    """``tokens/generateToken`` and ``tokens/`` (see ``gpserver.tokens``)."""

    page_title = "Generate token"

    def get(self, request: Request) -> HttpResponseBase:
        issued = token_generate(
            **tokens.token_request(self.params),
            request_ip=str(request.META.get("REMOTE_ADDR", "")),
            request=request._request,
        )
        return Response(tokens.token_document(issued, ssl=request.is_secure()))


class ServicesView(GPView):
    """``rest/services`` (folders and root services) and ``rest/services/<folder>``."""

    template_name = "gpserver/services.html"
    page_title = "Folder"

    def get(self, request: Request, folder: str = "") -> HttpResponseBase:
        principal = self.principal
        services = gp_services(principal=principal, folder=folder)
        if folder and not services:
            raise NoSuchService(f"no folder {folder!r}")
        folders = [] if folder else gp_folders(principal=principal)
        return Response(translate.catalog(folders, services))


class ServiceView(GPView):
    template_name = "gpserver/service.html"
    page_title = "GP service"

    def get(self, request: Request, service: str, folder: str = "") -> HttpResponseBase:
        return Response(translate.service_description(self.service()))


class ServiceInfoView(GPView):
    """``GPServer/info``: the item information, and the URLs of metadata and thumbnail."""

    page_title = "Service info"

    def get(self, request: Request, service: str, folder: str = "") -> HttpResponseBase:
        return Response(translate.service_info(self.service(), service_url=self.service_url()))


class ServiceItemInfoView(GPView):
    """``GPServer/info/iteminfo``: title, snippet, description and tags of the service."""

    page_title = "Item info"

    def get(self, request: Request, service: str, folder: str = "") -> HttpResponseBase:
        return Response(translate.item_info(self.service()))


class ServiceMetadataView(GPView):
    """``GPServer/info/metadata``: ArcGIS metadata XML, whatever ``f`` says (as Esri serves it)."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)

    def get(self, request: Request, service: str, folder: str = "") -> HttpResponseBase:
        xml = translate.service_metadata_xml(self.service(), style=self.params.get("format"))
        return HttpResponse(xml, content_type="text/xml; charset=utf-8")


class ServiceThumbnailView(GPView):
    """``GPServer/info/thumbnail``: Honua's services have no thumbnail (an error envelope)."""

    def get(self, request: Request, service: str, folder: str = "") -> HttpResponseBase:
        self.service()
        raise translate.NoThumbnail(f"GP service {service!r} has no thumbnail")


class TaskView(GPView):
    template_name = "gpserver/task.html"
    page_title = "GP task"

    def get(self, request: Request, service: str, task: str, folder: str = "") -> HttpResponseBase:
        gp = self.service()
        return Response(translate.task_description(self.task_spec(gp, task), gp))


class TaskExecuteView(GPView):
    """``execute``: run now and answer the results (every task, whatever the service's
    executionType)."""

    template_name = "gpserver/result.html"
    page_title = "Execute"
    changes = True

    def get(self, request: Request, service: str, task: str, folder: str = "") -> HttpResponseBase:
        gp = self.service()
        spec = self.task_spec(gp, task)
        principal = self.principal
        params = self.params
        submission = translate.execute_request(
            spec, gp, params, principal=principal, mode=ExecutionMode.SYNC, request_bytes=request_bytes(params),
            trace_header=request.headers.get("traceparent"), layers_root=self.layers_root(),
        )
        result = run_submit(submission)
        trace = translate.trace_headers(result)
        values = result.outputs or {}
        if translate.needs_stored_outputs(result):
            result, values = run_outputs(principal=principal, run_id=result.run_id)
        return Response(
            translate.execute_response(
                result, values, spec, translate.render_options(result, gp),
                job_url=self.job_url(result, spec), file_url=self.file_url(result, spec),
                layers_root=self.layers_root(),
            ),
            headers=trace,
        )


class TaskSubmitJobView(GPView):
    """``submitJob``: queue a job and answer its id (every task)."""

    template_name = "gpserver/job.html"
    page_title = "Job submitted"
    changes = True

    def get(self, request: Request, service: str, task: str, folder: str = "") -> HttpResponseBase:
        gp = self.service()
        spec = self.task_spec(gp, task)
        params = self.params
        submission = translate.execute_request(
            spec, gp, params, principal=self.principal, mode=ExecutionMode.ASYNC, request_bytes=request_bytes(params),
            trace_header=request.headers.get("traceparent"), layers_root=self.layers_root(),
        )
        result = run_submit(submission)
        return Response(translate.submit_document(result), headers=translate.trace_headers(result))


# --- jobs ------------------------------------------------------------------------------------------


class JobView(GPView):
    """``<task>/jobs/<jobId>`` and ``GPServer/jobs/<jobId>``."""

    template_name = "gpserver/job.html"
    page_title = "Job"

    def get(self, request: Request, service: str, job_id: str, folder: str = "", task: str | None = None) -> HttpResponseBase:
        _, _, result, spec = self.job(job_id, task)
        return_messages = translate.parse_bool(self.params.get("returnMessages"), "returnMessages")
        return Response(
            translate.job_document(
                result, spec, return_messages=return_messages is not False, layers_root=self.layers_root()
            )
        )


class ParameterFormatsMixin:
    """Results and inputs also come as GeoJSON and KMZ (feature sets only); other formats
    Esri lists for results (pbf, image) answer "format not supported"."""

    renderer_classes = [*GPView.renderer_classes, GPGeoJSONRenderer, GPKMZRenderer]

    def parameter_response(
        self, request: Request, p: ParamSpec, value: Any, opts: translate.RenderOptions,
        document: Callable[[], dict[str, Any]],
    ) -> Response:
        """The parameter in the negotiated format: ``document()`` for json/pjson/html."""
        fmt = request.accepted_renderer.format  # type: ignore[attr-defined]
        if fmt == "geojson":
            return Response(formats.geojson_document(p, value, opts))
        if fmt == "kmz":
            data = formats.kmz_bytes(p, value, opts, name=p.name)
            return Response(data, headers={"Content-Disposition": f'attachment; filename="{p.name}.kmz"'})
        return Response(document())


class JobResultView(ParameterFormatsMixin, GPView):
    template_name = "gpserver/result.html"
    page_title = "Job result"
    format_subject = "result"

    def get(
        self, request: Request, service: str, job_id: str, param: str, folder: str = "", task: str | None = None
    ) -> HttpResponseBase:
        gp = self.service()
        result, values = run_outputs(principal=self.principal, run_id=translate.run_id_of(job_id))
        spec = translate.task_of(result, gp, task, job_id)
        opts = translate.render_options(result, gp, self.params)
        p, value = translate.result_value(result, values, spec, param)
        return self.parameter_response(
            request, p, value, opts,
            lambda: translate.result_document(result, values, spec, param, opts, self.file_url(result, spec)),
        )


class JobResultFileView(GPView):
    """``results/<param>/file``: the bytes of a file output kept inline in the ledger."""

    def get(
        self, request: Request, service: str, job_id: str, param: str, folder: str = "", task: str | None = None
    ) -> HttpResponseBase:
        gp = self.service()
        result, values = run_outputs(principal=self.principal, run_id=translate.run_id_of(job_id))
        spec = translate.task_of(result, gp, task, job_id)
        data, media_type = translate.file_bytes(result, values, spec, param)
        return HttpResponse(data, content_type=media_type)


class JobInputView(ParameterFormatsMixin, GPView):
    template_name = "gpserver/result.html"
    page_title = "Job input"
    format_subject = "input"

    def get(
        self, request: Request, service: str, job_id: str, param: str, folder: str = "", task: str | None = None
    ) -> HttpResponseBase:
        gp, run_id, result, spec = self.job(job_id, task)
        inputs = run_inputs(principal=self.principal, run_id=run_id)
        opts = translate.render_options(result, gp, self.params)
        p, value = translate.input_value_of(spec, inputs, param)
        return self.parameter_response(
            request, p, value, opts, lambda: translate.input_document(spec, inputs, param, opts)
        )


class JobCancelView(GPView):
    """``cancel`` (arcgis-python sends GET): a queued job is cancelled now, a running one is
    told to stop (esriJobCancelling, then esriJobCancelled)."""

    template_name = "gpserver/job.html"
    page_title = "Job cancelled"
    changes = True

    def get(self, request: Request, service: str, job_id: str, folder: str = "", task: str | None = None) -> HttpResponseBase:
        _, run_id, _, _ = self.job(job_id, task)
        return Response(translate.submit_document(job_cancel(principal=self.principal, run_id=run_id)))


class JobDeleteView(GPView):
    """``delete``: cancel the job if active and remove its results (the ledger keeps the run)."""

    template_name = "gpserver/job.html"
    page_title = "Job deleted"
    changes = True

    def get(self, request: Request, service: str, job_id: str, folder: str = "", task: str | None = None) -> HttpResponseBase:
        _, run_id, _, _ = self.job(job_id, task)
        return Response(translate.submit_document(job_dismiss(principal=self.principal, run_id=run_id)))


# --- uploads -----------------------------------------------------------------------------------------


class UploadsInfoView(GPView):
    """``uploads`` and ``uploads/info``: the limits (maxUploadFileSize in MB, file types)."""

    template_name = "gpserver/uploads.html"
    page_title = "Uploads"

    def get(self, request: Request, service: str, folder: str = "") -> HttpResponseBase:
        self.service()
        return Response(uploads_info())


def _file(request: Request) -> Any:
    upload = request.FILES.get("file")
    if upload is None:
        raise MissingParameter("this operation takes a multipart POST with the file in a field named 'file'")
    return upload


class UploadCreateView(GPView):
    """``uploads/upload``: one multipart POST (``file``, ``description``) -> a committed item."""

    template_name = "gpserver/uploads.html"
    page_title = "Upload"
    changes = True

    def get(self, request: Request, service: str, folder: str = "") -> HttpResponseBase:
        self.service()
        upload = _file(request)
        item = upload_create(
            principal=self.principal, name=upload.name or "upload", data=upload.read(),
            description=self.params.get("description", ""),
        )
        return Response(translate.upload_answer(item))


class UploadRegisterView(GPView):
    """``uploads/register`` (``itemName``): an item to send in parts."""

    template_name = "gpserver/uploads.html"
    page_title = "Register an upload"
    changes = True

    def get(self, request: Request, service: str, folder: str = "") -> HttpResponseBase:
        self.service()
        params = self.params
        item = upload_register(
            principal=self.principal, name=params.get("itemName", ""), description=params.get("description", "")
        )
        return Response(translate.upload_answer(item))


class UploadItemView(GPView):
    template_name = "gpserver/uploads.html"
    page_title = "Uploaded item"

    def get(self, request: Request, service: str, item_id: str, folder: str = "") -> HttpResponseBase:
        self.service()
        return Response(translate.upload_item(upload_get(principal=self.principal, item_id=item_id)))


class UploadPartView(GPView):
    """``uploads/<itemID>/uploadPart`` (multipart ``file``, ``partNumber``)."""

    template_name = "gpserver/uploads.html"
    page_title = "Upload part"
    changes = True

    def get(self, request: Request, service: str, item_id: str, folder: str = "") -> HttpResponseBase:
        self.service()
        number = translate.part_number(self.params.get("partNumber"))
        item = upload_part(principal=self.principal, item_id=item_id, part_number=number, data=_file(request).read())
        return Response(translate.upload_answer(item))


class UploadCommitView(GPView):
    """``uploads/<itemID>/commit`` (``parts=1,2,3``, optional ``checksum``)."""

    template_name = "gpserver/uploads.html"
    page_title = "Commit upload"
    changes = True

    def get(self, request: Request, service: str, item_id: str, folder: str = "") -> HttpResponseBase:
        self.service()
        params = self.params
        item = upload_commit(
            principal=self.principal, item_id=item_id, parts=translate.part_list(params.get("parts")),
            checksum=params.get("checksum") or None,
        )
        return Response(translate.upload_answer(item))


class UploadDeleteView(GPView):
    template_name = "gpserver/uploads.html"
    page_title = "Delete upload"
    changes = True

    def get(self, request: Request, service: str, item_id: str, folder: str = "") -> HttpResponseBase:
        self.service()
        upload_delete(principal=self.principal, item_id=item_id)
        return Response({"success": True})


class UploadDownloadView(GPView):
    """``uploads/<itemID>/download``: the committed bytes."""

    def get(self, request: Request, service: str, item_id: str, folder: str = "") -> HttpResponseBase:
        self.service()
        item, stream = upload_stream(principal=self.principal, item_id=item_id)
        response = FileResponse(stream, content_type=item.media_type or "application/octet-stream")
        response["Content-Length"] = str(item.size)
        response["Content-Disposition"] = f'attachment; filename="{item.item_name.replace(chr(34), "")}"'
        return response


class UploadIngestView(GPView):
    """``uploads/<itemID>/ingest`` (collectionId, title, description, storage, srid, sublayer):
    the uploaded file becomes a layer of the tenant; the answer gives its Honua URL."""

    template_name = "gpserver/uploads.html"
    page_title = "Ingest upload"
    changes = True

    def get(self, request: Request, service: str, item_id: str, folder: str = "") -> HttpResponseBase:
        self.service()
        info = layer_ingest_upload(principal=self.principal, item_id=item_id, **translate.ingest_fields(self.params))
        url = self.request.build_absolute_uri(reverse("ogcprocesses:collection", kwargs={"collection_id": info.id}))
        return Response(translate.layer_answer(info, url=url))


class NotFoundView(GPView):
    """Any other path under /arcgis/: Esri's "Invalid URL" error."""

    def get(self, request: Request, rest: str = "") -> HttpResponseBase:
        raise Http404(f"no resource at {request.path}")

    put = patch = delete = get
