"""Surface-independent URLs: artifact downloads (operations endpoints: honua/urls.py)."""

from django.urls import path

from controlplane import views

urlpatterns = [
    path("artifacts/<str:artifact_id>", views.ArtifactDownloadView.as_view(), name="artifact-download"),
]
