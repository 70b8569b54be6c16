"""Top-level URLs: the OGC API - Processes surface at /ogcapi/, GPServer at /arcgis/rest/,
the job browser at /app/ (sign-in at /accounts/), operations endpoints (also answered by
honua.operations.OperationsMiddleware)."""

from django.contrib import admin
from django.urls import include, path

from honua import operations

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ogcapi/", include("ogcprocesses.urls")),
    path("arcgis/", include("gpserver.urls")),
    path("app/", include("browser.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", operations.liveness, name="healthz"),
    path("readyz", operations.readiness, name="readyz"),
    path("metrics", operations.metrics, name="metrics"),
    path("", include("controlplane.urls")),
]
