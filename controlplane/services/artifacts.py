"""The artifact store: outputs too big to inline, or asked for by reference.

The local store keeps files under MEDIA_ROOT and serves them through a signed,
expiring URL that Honua checks (``/artifacts/<id>?expires=..&sig=..``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.core import signing
from django.utils import timezone

from controlplane.models import Artifact


def _root() -> Path:
    return Path(settings.MEDIA_ROOT)


def artifact_create(
    *, tenant_id: int, run_id: uuid.UUID | str | None, name: str, data: bytes, media_type: str
) -> Artifact:
    """Store bytes and record them; the caller gets the Artifact row."""
    artifact_id = uuid.uuid4()
    key = f"{tenant_id}/{run_id or 'none'}/{artifact_id}"
    path = _root() / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Artifact.objects.create(
        id=artifact_id,
        tenant_id=tenant_id,
        run_id=run_id,
        name=name,
        store="local",
        key=key,
        media_type=media_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        expires_at=timezone.now() + timedelta(hours=settings.HONUA["RESULT_TTL_HOURS"]),
    )


def output_encode(value: Any, param_type: str) -> tuple[bytes, str, str]:
    """An output value as stored bytes: (data, media type, format). Files keep their own
    bytes and media type, strings are text, everything else is (Geo)JSON."""
    if param_type in ("file", "raster") and isinstance(value, dict) and "value" in value:
        raw = value["value"]
        if value.get("encoding", "base64") == "base64" and isinstance(raw, str):
            data = base64.b64decode(raw)
        else:
            data = raw.encode() if isinstance(raw, str) else orjson.dumps(raw)
        return data, str(value.get("media_type") or "application/octet-stream"), "bytes"
    if param_type == "string" and isinstance(value, str):
        return value.encode(), "text/plain; charset=utf-8", "text"
    media = "application/geo+json" if param_type in ("feature_collection", "geometry") else "application/json"
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), media, "json"


def output_decode(data: bytes, link: dict[str, Any]) -> Any:
    """The inverse of ``output_encode`` for a stored output link."""
    fmt = link.get("format", "json")
    if fmt == "bytes":
        return {
            "value": base64.b64encode(data).decode(),
            "media_type": link.get("media_type", "application/octet-stream"),
            "encoding": "base64",
        }
    if fmt == "text":
        return data.decode()
    return orjson.loads(data)


def artifact_store_delete(*, store: str, key: str) -> None:
    if store == "local":
        (_root() / key).unlink(missing_ok=True)


def artifact_open(artifact: Artifact) -> Path:
    return _root() / artifact.key


def _signature(artifact_id: str, expires: int) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"{artifact_id}:{expires}".encode(), hashlib.sha256
    ).hexdigest()


def artifact_link(artifact_id: uuid.UUID | str, *, base_url: str) -> dict[str, Any]:
    """An expiring signed link to an artifact."""
    expires = int(time.time()) + settings.HONUA["ARTIFACT_LINK_SECONDS"]
    sig = _signature(str(artifact_id), expires)
    return {
        "href": f"{base_url.rstrip('/')}/artifacts/{artifact_id}?expires={expires}&sig={sig}",
        "expires": expires,
    }


def artifact_link_valid(artifact_id: str, expires: str, sig: str) -> bool:
    try:
        exp = int(expires)
    except (TypeError, ValueError):
        return False
    return exp >= time.time() and hmac.compare_digest(_signature(artifact_id, exp), sig or "")


__all__ = ["artifact_create", "artifact_link", "artifact_link_valid", "artifact_open", "signing"]
