"""AWS through moto on loopback, for every test that needs S3 (and SQS, AWS Batch...).

- ``moto_server`` (session): one ``moto.server.ThreadedMotoServer`` on 127.0.0.1, a free port,
  serving every AWS service at one endpoint (``.endpoint_url``). moto does not enforce the
  expiry of presigned URLs; the server here does, as S3 does (403 AccessDenied "Request has
  expired"), so a test can prove a link expires.
- ``aws``: fake credentials and region in the environment (for boto3 only, for this test
  only; shared config and credentials files point nowhere, instance metadata is off), Honua's
  boto3 clients forgotten before and after, and moto's state reset after the test.
  ``aws.client("sqs")`` is a test-side client at moto.
- ``s3_bucket``: a fresh bucket (its name); ``s3_store``: Honua's artifact store switched to
  S3 in that bucket for one test (pytest-django's ``settings`` restores local after).
"""

from __future__ import annotations

import logging
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class PresignedExpiry:
    """WSGI middleware: refuse a presigned request past its expiry (SigV4: X-Amz-Date +
    X-Amz-Expires; SigV2: Expires, epoch seconds)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        expires: float | None = None
        if "X-Amz-Expires" in query and "X-Amz-Date" in query:
            signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            expires = signed.timestamp() + int(query["X-Amz-Expires"][0])
        elif "Expires" in query and "Signature" in query:
            expires = float(query["Expires"][0])
        if expires is not None and time.time() > expires:
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                b"<Message>Request has expired</Message></Error>"
            )
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


@dataclass
class MotoServer:
    host: str
    port: int
    endpoint_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.endpoint_url = f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every resource of every service (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            assert response.status == 200


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # werkzeug's server reads .app per request: wrap moto's application once it exists.
    wsgi = server._server
    assert wsgi is not None
    wsgi.app = PresignedExpiry(wsgi.app)
    host, port = server.get_host_and_port()
    yield MotoServer(host=host, port=port)
    server.stop()


@dataclass
class AwsEnv:
    server: MotoServer
    region: str = REGION

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    def client(self, service: str) -> Any:
        """A test-side boto3 client of ``service`` at moto (not Honua's)."""
        import boto3

        return boto3.session.Session().client(service, region_name=self.region, endpoint_url=self.endpoint_url)


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> Iterator[AwsEnv]:
    from controlplane.services.aws import aws_clients_reset

    nowhere = tmp_path_factory.mktemp("aws") / "none"
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    aws_clients_reset()
    try:
        yield AwsEnv(server=moto_server)
    finally:
        aws_clients_reset()
        moto_server.reset()


@pytest.fixture
def s3_bucket(aws: AwsEnv) -> str:
    name = f"honua-test-{uuid.uuid4().hex[:12]}"
    aws.client("s3").create_bucket(Bucket=name)
    return name


@dataclass
class S3Store:
    bucket: str
    prefix: str
    aws: AwsEnv

    @property
    def s3(self) -> Any:
        return self.aws.client("s3")


@pytest.fixture
def s3_store(aws: AwsEnv, s3_bucket: str, settings) -> S3Store:
    """Honua's artifacts (and uploads) in S3 at moto for this test."""
    prefix = "honua/"
    settings.HONUA = {
        **settings.HONUA,
        "ARTIFACT_STORE": "s3",
        "S3_BUCKET": s3_bucket,
        "S3_PREFIX": prefix,
        "S3_REGION": aws.region,
        "S3_ENDPOINT_URL": aws.endpoint_url,
        "S3_SSE": "AES256",
        "S3_KMS_KEY_ID": "",
    }
    return S3Store(bucket=s3_bucket, prefix=prefix, aws=aws)
