"""The one place Honua makes AWS SDK (boto3) clients: S3 for artifacts now; SQS and AWS Batch
next. boto3 talks to the AWS endpoints the operator configured, never to a URL a client gave,
so it is outside the SSRF guard (controlplane/services/outbound.py), and only here.

Credentials come from boto3's own chain (environment, shared config/credentials files and
profile, web identity, container and instance roles); Honua has no setting of its own for them.

boto3 sessions are not thread-safe but its clients are: one session per process makes one
client per (service, region, endpoint, purpose), lazily, under a lock, and every thread shares
it. The "probe" purpose is a readiness check's client: the /readyz time budget as its connect
and read timeouts, and no retries.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings

_lock = threading.Lock()
_session: Any = None
_clients: dict[tuple[str, str, str, str], Any] = {}


def _honua(name: str, default: Any) -> Any:
    return settings.HONUA.get(name, default)


def aws_config(*, purpose: str = "default", s3_path_style: bool = False) -> Any:
    """The botocore Config of Honua's clients: timeouts, and retries in standard mode."""
    from botocore.config import Config

    if purpose == "probe":
        timeout = float(_honua("READYZ_TIMEOUT_SECONDS", 2.0))
        connect, read, attempts = timeout, timeout, 1
    else:
        connect = float(_honua("AWS_CONNECT_TIMEOUT_SECONDS", 5.0))
        read = float(_honua("AWS_READ_TIMEOUT_SECONDS", 30.0))
        attempts = int(_honua("AWS_MAX_ATTEMPTS", 3))
    return Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "total_max_attempts": max(1, attempts)},
        signature_version="s3v4",
        s3={"addressing_style": "path" if s3_path_style else "auto"},
        max_pool_connections=max(10, int(_honua("INLINE_THREADS", 8)) + 2),
    )


def aws_client(service: str, *, region: str = "", endpoint_url: str = "", purpose: str = "default") -> Any:
    """This process's boto3 client for ``service`` (made once, shared by every thread).
    ``endpoint_url``: another endpoint than AWS's (MinIO, moto); S3 is then addressed by path."""
    key = (service, region or "", endpoint_url or "", purpose)
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
            global _session
            if _session is None:
                import boto3.session

                _session = boto3.session.Session()
            client = _session.client(
                service,
                region_name=region or None,
                endpoint_url=endpoint_url or None,
                config=aws_config(purpose=purpose, s3_path_style=bool(endpoint_url)),
            )
            _clients[key] = client
    return client


def aws_clients_reset() -> None:
    """Forget every client and the session: the next call reads credentials and settings
    afresh (tests switching endpoints or credentials)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None


def _after_fork() -> None:
    # A forked child (gunicorn --preload, qcluster workers) must not share the parent's
    # connection pools, nor a lock another parent thread held at the fork.
    global _lock, _session
    _lock = threading.Lock()
    _clients.clear()
    _session = None


os.register_at_fork(after_in_child=_after_fork)
