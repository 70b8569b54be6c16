from django.apps import AppConfig


class OgcProcessesConfig(AppConfig):
    name = "ogcprocesses"
    verbose_name = "OGC API - Processes"
