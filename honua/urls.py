"""Top-level URLs: the OGC API - Processes surface at /ogcapi/, GPServer at /arcgis/rest/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ogcapi/", include("ogcprocesses.urls")),
    path("arcgis/", include("gpserver.urls")),
    path("", include("controlplane.urls")),
]
