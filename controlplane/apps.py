from django.apps import AppConfig


class ControlPlaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Control plane"

    def ready(self) -> None:
        from controlplane import checks  # noqa: F401  (registers system checks)
        from executors.batch.aws import aws_clients_use

        # The AWS Batch runner's boto3 clients come from the control plane's one factory.
        aws_clients_use(_batch_client)


def _batch_client(service: str) -> object:
    from controlplane.services.batch_events import batch_client

    return batch_client(service)
