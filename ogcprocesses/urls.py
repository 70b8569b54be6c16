"""OGC API - Processes - Part 1: Core 1.0, one path per operation (mounted at /ogcapi/)."""

from django.urls import path, re_path

from ogcprocesses import views

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
    re_path(r"^(?P<rest>.*)$", views.NotFoundView.as_view(), name="not-found"),
]
