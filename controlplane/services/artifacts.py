"""The artifact store: outputs too big to inline, or asked for by reference.

The local store keeps files under MEDIA_ROOT and serves them through a signed,
expiring URL that Honua checks (``/artifacts/<id>?expires=..&sig=..``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import tempfile
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


class StoreNotReady(Exception):
    """The artifact store cannot take writes now; the message says why."""


class ArtifactStore:
    """Where artifact bytes live. A store class per ``Artifact.store`` value; an S3 store
    implements the same four methods."""

    name: str = ""

    def write(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def check(self) -> dict[str, Any]:
        """Raise StoreNotReady unless the store takes writes now; else facts for /readyz."""
        raise NotImplementedError


class LocalArtifactStore(ArtifactStore):
    """Files under MEDIA_ROOT."""

    name = "local"

    def write(self, key: str, data: bytes) -> None:
        path = _root() / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, key: str) -> None:
        (_root() / key).unlink(missing_ok=True)

    def check(self) -> dict[str, Any]:
        root = _root()
        try:
            # Writes create the root as needed (a fresh install has none yet): so does this.
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreNotReady(f"the artifact root cannot be created ({exc.strerror})") from exc
        if not root.is_dir():
            raise StoreNotReady("the artifact root is not a directory")
        try:
            # A real write: access(2) says nothing of read-only mounts, quotas or a full disk.
            with tempfile.NamedTemporaryFile(dir=root, prefix=".readyz-") as probe:
                probe.write(b"ok")
                probe.flush()
        except OSError as exc:
            raise StoreNotReady(f"the artifact root is not writable ({exc.strerror})") from exc
        return {"store": self.name}


_STORES: dict[str, ArtifactStore] = {LocalArtifactStore.name: LocalArtifactStore()}


def artifact_store(name: str = "local") -> ArtifactStore:
    """The store named ``name`` (the value of ``Artifact.store``)."""
    return _STORES[name]


def artifact_stores() -> list[ArtifactStore]:
    """Every store this server writes to (readiness checks each)."""
    return list(_STORES.values())


def artifact_create(
    *, tenant_id: int, run_id: uuid.UUID | str | None, name: str, data: bytes, media_type: str
) -> Artifact:
    """Store bytes and record them; the caller gets the Artifact row."""
    artifact_id = uuid.uuid4()
    key = f"{tenant_id}/{run_id or 'none'}/{artifact_id}"
    store = artifact_store()
    store.write(key, data)
    return Artifact.objects.create(
        id=artifact_id,
        tenant_id=tenant_id,
        run_id=run_id,
        name=name,
        store=store.name,
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
    if store in _STORES:
        _STORES[store].delete(key)


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
