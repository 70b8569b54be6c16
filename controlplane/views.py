"""Plain Django views shared by both surfaces: signed artifact downloads (probes: honua.operations)."""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponseBase, JsonResponse
from django.views import View

from controlplane.exceptions import NoSuchOutput
from controlplane.selectors import artifact_get
from controlplane.services.artifacts import ArtifactGone, artifact_link_valid, artifact_stream


class ArtifactDownloadView(View):
    def get(self, request: HttpRequest, artifact_id: str) -> HttpResponseBase:
        if not artifact_link_valid(artifact_id, request.GET.get("expires", ""), request.GET.get("sig", "")):
            return JsonResponse({"error": "the link is invalid or has expired"}, status=404)
        try:
            art = artifact_get(principal=None, artifact_id=artifact_id)
        except NoSuchOutput as exc:
            return JsonResponse({"error": exc.message}, status=404)
        try:
            stream = artifact_stream(art)
        except ArtifactGone:
            return JsonResponse({"error": "the artifact is no longer stored"}, status=404)
        response = FileResponse(stream, content_type=art.media_type)
        response["Content-Length"] = str(art.size)
        response["ETag"] = f'"{art.sha256}"'
        return response

