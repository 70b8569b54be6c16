"""Surface-independent URLs: artifact downloads, the SNS webhook of AWS Batch job events
(operations endpoints: honua/urls.py)."""

from django.urls import path

from controlplane import views

urlpatterns = [
    path("artifacts/<str:artifact_id>", views.ArtifactDownloadView.as_view(), name="artifact-download"),
    path("aws/sns/batch-events", views.SnsBatchEventsView.as_view(), name="sns-batch-events"),
]
