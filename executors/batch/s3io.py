"""The task side of S3 staging (the container of an AWS Batch job): no Django, so its boto3
client is made here, from boto3's own credential chain (the job role) and environment
(AWS_REGION / AWS_DEFAULT_REGION; AWS_ENDPOINT_URL for MinIO or moto). The server's clients
come from controlplane/services/aws.py; this module is the only other maker of one."""

from __future__ import annotations

import os
import threading
from typing import Any

_lock = threading.Lock()
_client: Any = None


def s3_client() -> Any:
    """The task process's S3 client (standard retries, bounded timeouts)."""
    global _client
    with _lock:
        if _client is None:
            import boto3
            from botocore.config import Config

            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            _client = boto3.session.Session().client(
                "s3",
                config=Config(
                    connect_timeout=10,
                    read_timeout=60,
                    retries={"mode": "standard", "total_max_attempts": 5},
                    s3={"addressing_style": "path" if endpoint else "auto"},
                ),
            )
        return _client


def s3_read(bucket: str, key: str) -> bytes:
    body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return bytes(body.read())
    finally:
        body.close()


def s3_write(bucket: str, key: str, data: bytes) -> None:
    s3_client().put_object(Bucket=bucket, Key=key, Body=data, ServerSideEncryption="AES256")
