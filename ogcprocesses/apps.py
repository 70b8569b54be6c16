from django.apps import AppConfig


class OgcProcessesConfig(AppConfig):
    name = "ogcprocesses"
    verbose_name = "OGC API - Processes"

    def ready(self) -> None:
        from controlplane.contracts import Surface
        from controlplane.services.notifications import payload_builder_register
        from ogcprocesses.callbacks import build_payload

        payload_builder_register(Surface.OGC.value, build_payload)
