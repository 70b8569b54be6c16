from django.apps import AppConfig


class GpServerConfig(AppConfig):
    name = "gpserver"
    verbose_name = "GeoservicesREST GPServer"
