"""The job browser (mounted at /app/): jobs, a job's page and its poll, processes and forms."""

from django.urls import path

from browser import views

app_name = "browser"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<str:job_id>/", views.JobDetailView.as_view(), name="job"),
    path("jobs/<str:job_id>/status", views.JobStatusView.as_view(), name="job-status"),
    path("jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/dismiss", views.JobDismissView.as_view(), name="job-dismiss"),
    path("jobs/<str:job_id>/outputs/<str:name>", views.JobOutputView.as_view(), name="job-output"),
    path("processes/", views.ProcessListView.as_view(), name="process-list"),
    path("processes/<str:process_id>/", views.ProcessDetailView.as_view(), name="process"),
]
