"""Plain Django views shared by both surfaces: signed artifact downloads (probes: honua.operations)."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponseBase, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from controlplane.exceptions import NoSuchOutput, SnsMessageRefused
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



@method_decorator(csrf_exempt, name="dispatch")  # SNS signs its messages; it has no CSRF token
class SnsBatchEventsView(View):
    """AWS Batch job events delivered by SNS over HTTPS (optional; off without topics)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponseBase:
        from controlplane.services.sns import sns_message_receive

        if not settings.HONUA.get("BATCH", {}).get("SNS_TOPIC_ARNS"):
            return JsonResponse({"error": "not found"}, status=404)
        if len(request.body) > 256 * 1024:  # SNS messages are at most 256 KB
            return JsonResponse({"error": "the message is too large"}, status=413)
        try:
            outcome = sns_message_receive(body=request.body)
        except SnsMessageRefused as exc:
            return JsonResponse({"error": exc.message, "code": exc.code}, status=exc.status)
        return JsonResponse({"outcome": outcome})
