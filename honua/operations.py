"""Operations endpoints: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``
(Prometheus), and the middleware that serves them ahead of the rest of the stack."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.views import View
from prometheus_client.exposition import choose_encoder

from controlplane.services.health import readiness_check
from controlplane.services.metrics import metrics_registry


def _no_store(response: HttpResponseBase) -> HttpResponseBase:
    response["Cache-Control"] = "no-store"
    return response


class LivenessProbeView(View):
    """The process answers HTTP. Touches nothing else: a database outage must not get every
    web process restarted."""

    def get(self, request: HttpRequest) -> HttpResponseBase:
        return _no_store(JsonResponse({"status": "ok"}))


class ReadinessProbeView(View):
    """200 when the database, the broker and the artifact store all answer; else 503."""

    def get(self, request: HttpRequest) -> HttpResponseBase:
        results = readiness_check()
        ready = all(r.ok for r in results)
        body = {"status": "ready" if ready else "unavailable", "checks": {r.name: r.to_json() for r in results}}
        return _no_store(JsonResponse(body, status=200 if ready else 503))


class MetricsScrapeView(View):
    """Prometheus exposition (text, or OpenMetrics when the scraper asks for it); behind a
    bearer token when HONUA_METRICS_TOKEN is set."""

    def get(self, request: HttpRequest) -> HttpResponseBase:
        token = settings.HONUA.get("METRICS_TOKEN") or ""
        if token:
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
                response = JsonResponse({"error": "a valid bearer token is required"}, status=401)
                response["WWW-Authenticate"] = 'Bearer realm="metrics"'
                return _no_store(response)
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return _no_store(HttpResponse(encoder(metrics_registry()), content_type=content_type))


liveness = LivenessProbeView.as_view()
readiness = ReadinessProbeView.as_view()
metrics = MetricsScrapeView.as_view()
PATHS: dict[str, Callable[[HttpRequest], HttpResponseBase]] = {
    "/healthz": liveness,
    "/readyz": readiness,
    "/metrics": metrics,
}


class OperationsMiddleware:
    """Answers the operations paths before any other middleware. Probes and scrapers address
    a pod by its IP, which ALLOWED_HOSTS (rightly) does not list, and must not be redirected
    to HTTPS or pay for sessions; these answers build no URL from the Host header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        view = PATHS.get(request.path_info)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)
