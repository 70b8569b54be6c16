"""OGC API - Processes - Part 1: Core 1.0 and OGC API - Features - Part 1: Core 1.0 (the layer
catalog, read-only, plus ingest), one path per operation (mounted at /ogcapi/)."""

from django.urls import path, re_path

from ogcprocesses import features, views

app_name = "ogcprocesses"

urlpatterns = [
    path("", views.LandingPageView.as_view(), name="landing"),
    path("conformance", views.ConformanceDeclarationView.as_view(), name="conformance"),
    path("api", views.APIDefinitionView.as_view(), name="api"),
    path("processes", views.ProcessListView.as_view(), name="process-list"),
    path("processes/<str:process_id>", views.ProcessDescriptionView.as_view(), name="process"),
    path("processes/<str:process_id>/execution", views.ProcessExecuteView.as_view(), name="execute"),
    path("jobs", views.JobListView.as_view(), name="job-list"),
    path("jobs/<str:job_id>", views.JobStatusView.as_view(), name="job"),
    path("jobs/<str:job_id>/results", views.JobResultsView.as_view(), name="job-results"),
    path("collections", features.CollectionListView.as_view(), name="collections"),
    path("collections/<str:collection_id>", features.CollectionView.as_view(), name="collection"),
    path("collections/<str:collection_id>/items", features.ItemListView.as_view(), name="items"),
    path("collections/<str:collection_id>/items/<str:feature_id>", features.ItemView.as_view(), name="item"),
    path("uploads", features.UploadListView.as_view(), name="uploads"),
    path("uploads/<str:upload_id>", features.UploadView.as_view(), name="upload"),
    re_path(r"^(?P<rest>.*)$", views.NotFoundView.as_view(), name="not-found"),
]
