"""Surface-independent URLs: artifact downloads and health."""

from django.urls import path

from controlplane import views

urlpatterns = [
    path("artifacts/<str:artifact_id>", views.ArtifactDownloadView.as_view(), name="artifact-download"),
    path("healthz", views.HealthzView.as_view(), name="healthz"),
    path("readyz", views.ReadyzView.as_view(), name="readyz"),
]
