"""Top-level URLs: the OGC API - Processes surface at /ogcapi/, GPServer at /arcgis/rest/,
operations endpoints (also answered by honua.operations.OperationsMiddleware)."""

from django.contrib import admin
from django.urls import include, path

from honua import operations

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ogcapi/", include("ogcprocesses.urls")),
    path("arcgis/", include("gpserver.urls")),
    path("healthz", operations.liveness, name="healthz"),
    path("readyz", operations.readiness, name="readyz"),
    path("metrics", operations.metrics, name="metrics"),
    path("", include("controlplane.urls")),
]
