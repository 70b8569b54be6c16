"""GeoservicesREST GPServer resources (mounted at /arcgis/), one pattern per resource.

Services live in a folder or in the root folder: ``rest/services/[<folder>/]<service>/GPServer``.
Job resources exist under a task and under the service (``GPServer/jobs/<jobId>``). A trailing
slash is tolerated everywhere. The token service is ``tokens/generateToken`` (gpserver.tokens).
"""

from django.urls import re_path

from gpserver import views

app_name = "gpserver"

SERVICE = r"^rest/services/(?:(?P<folder>[^/]+)/)?(?P<service>[^/]+)/GPServer"
JOB = SERVICE + r"/(?:(?!jobs/|uploads/)(?P<task>[^/]+)/)?jobs/(?P<job_id>[^/]+)"
UPLOAD = SERVICE + r"/uploads/(?P<item_id>[^/]+)"
END = r"/?$"

urlpatterns = [
    re_path(r"^rest/info" + END, views.InfoView.as_view(), name="info"),
    re_path(r"^rest/services" + END, views.ServicesView.as_view(), name="services"),
    re_path(JOB + END, views.JobView.as_view(), name="job"),
    re_path(JOB + r"/results/(?P<param>[^/]+)" + END, views.JobResultView.as_view(), name="job-result"),
    re_path(JOB + r"/results/(?P<param>[^/]+)/file" + END, views.JobResultFileView.as_view(), name="job-result-file"),
    re_path(JOB + r"/inputs/(?P<param>[^/]+)" + END, views.JobInputView.as_view(), name="job-input"),
    re_path(JOB + r"/cancel" + END, views.JobCancelView.as_view(), name="job-cancel"),
    re_path(JOB + r"/delete" + END, views.JobDeleteView.as_view(), name="job-delete"),
    re_path(SERVICE + r"/uploads(?:/info)?" + END, views.UploadsInfoView.as_view(), name="uploads-info"),
    re_path(SERVICE + r"/uploads/upload" + END, views.UploadCreateView.as_view(), name="upload"),
    re_path(SERVICE + r"/uploads/register" + END, views.UploadRegisterView.as_view(), name="upload-register"),
    re_path(UPLOAD + END, views.UploadItemView.as_view(), name="upload-item"),
    re_path(UPLOAD + r"/uploadPart" + END, views.UploadPartView.as_view(), name="upload-part"),
    re_path(UPLOAD + r"/commit" + END, views.UploadCommitView.as_view(), name="upload-commit"),
    re_path(UPLOAD + r"/delete" + END, views.UploadDeleteView.as_view(), name="upload-delete"),
    re_path(UPLOAD + r"/download" + END, views.UploadDownloadView.as_view(), name="upload-download"),
    re_path(UPLOAD + r"/ingest" + END, views.UploadIngestView.as_view(), name="upload-ingest"),
    re_path(SERVICE + END, views.ServiceView.as_view(), name="service"),
    re_path(SERVICE + r"/info" + END, views.ServiceInfoView.as_view(), name="service-info"),
    re_path(SERVICE + r"/info/iteminfo" + END, views.ServiceItemInfoView.as_view(), name="service-iteminfo"),
    re_path(SERVICE + r"/info/metadata" + END, views.ServiceMetadataView.as_view(), name="service-metadata"),
    re_path(SERVICE + r"/info/thumbnail" + END, views.ServiceThumbnailView.as_view(), name="service-thumbnail"),
    re_path(SERVICE + r"/(?P<task>[^/]+)" + END, views.TaskView.as_view(), name="task"),
    re_path(SERVICE + r"/(?P<task>[^/]+)/execute" + END, views.TaskExecuteView.as_view(), name="execute"),
    re_path(SERVICE + r"/(?P<task>[^/]+)/submitJob" + END, views.TaskSubmitJobView.as_view(), name="submit-job"),
    re_path(r"^rest/services/(?P<folder>[^/]+)" + END, views.ServicesView.as_view(), name="folder"),
    re_path(r"^tokens/generateToken" + END, views.TokenGenerateView.as_view(), name="generate-token"),
    re_path(r"^tokens" + END, views.TokenGenerateView.as_view(), name="tokens"),
    re_path(r"^(?P<rest>.*)$", views.NotFoundView.as_view(), name="not-found"),
]
