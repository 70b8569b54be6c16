"""The artifact stores: outputs too big to inline, or asked for by reference, and uploads.

``HONUA_ARTIFACT_STORE`` names the store new bytes go to; an artifact is read from, linked
to and deleted from the store it was written to (``Artifact.store``), so switching stores
strands nothing.

- ``local``: files under MEDIA_ROOT, served through a signed, expiring URL that Honua checks
  (``/artifacts/<id>?expires=..&sig=..``).
- ``s3``: objects under ``HONUA_S3_PREFIX`` in ``HONUA_S3_BUCKET``, written with server-side
  encryption and a SHA-256 checksum, tagged ``honua-retention=ttl`` and ``honua-expires`` (the
  bucket's lifecycle rule, ``manage.py s3_lifecycle``, removes what Honua's own expiry did
  not); links are presigned S3 GET URLs.

Bytes are read back through ``artifact_stream`` (a binary file object) or ``artifact_read``;
nothing outside this module knows where they live.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.http import content_disposition_header

from controlplane.models import Artifact
from controlplane.services.mediatypes import EXTENSIONS

log = logging.getLogger("honua.artifacts")

RETENTION_TAG = ("honua-retention", "ttl")


def _root() -> Path:
    return Path(settings.MEDIA_ROOT)


class StoreNotReady(Exception):
    """The artifact store cannot take writes now; the message says why."""


class ArtifactGone(Exception):
    """The artifact's bytes are no longer in its store."""


class ArtifactStore:
    """Where artifact bytes live: a store class per ``Artifact.store`` value."""

    name: str = ""
    # Clients download straight from the store (``direct_link``), not through Honua.
    direct_links: bool = False

    def object_key(self, key: str) -> str:
        """The key an artifact is kept under, from its store-independent key."""
        return key

    def write(self, key: str, data: bytes, *, media_type: str, sha256: str, expires_at: datetime) -> None:
        raise NotImplementedError

    def open(self, key: str) -> IO[bytes]:
        """A binary file object of the bytes (the caller closes it); ArtifactGone when absent."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def check(self) -> dict[str, Any]:
        """Raise StoreNotReady unless the store takes writes now; else facts for /readyz."""
        raise NotImplementedError

    def direct_link(self, key: str, *, name: str, media_type: str, seconds: int) -> str | None:
        """A URL clients download from without Honua, or None (Honua serves the bytes)."""
        return None


class LocalArtifactStore(ArtifactStore):
    """Files under MEDIA_ROOT."""

    name = "local"

    def write(self, key: str, data: bytes, *, media_type: str, sha256: str, expires_at: datetime) -> None:
        path = _root() / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def open(self, key: str) -> IO[bytes]:
        try:
            return (_root() / key).open("rb")
        except FileNotFoundError as exc:
            raise ArtifactGone(key) from exc

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


class _S3Body(io.RawIOBase):
    """botocore's response body as a file object. Not the body itself: its ``with`` yields the
    raw urllib3 stream, which skips the checks of the length and the checksum."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _s3(name: str) -> Any:
    return settings.HONUA.get(f"S3_{name}", "")


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in {"NoSuchKey", "404", "NotFound"}


class S3ArtifactStore(ArtifactStore):
    """Objects in an S3 bucket (boto3; any S3 API through ``HONUA_S3_ENDPOINT_URL``)."""

    name = "s3"
    direct_links = True

    def client(self, purpose: str = "default") -> Any:
        from controlplane.services.aws import aws_client

        return aws_client("s3", region=_s3("REGION"), endpoint_url=_s3("ENDPOINT_URL"), purpose=purpose)

    @property
    def bucket(self) -> str:
        return str(_s3("BUCKET"))

    def object_key(self, key: str) -> str:
        return f"{_s3('PREFIX')}{key}"

    def _encryption(self) -> dict[str, str]:
        sse = str(_s3("SSE") or "none")
        if sse.lower() == "none":
            return {}
        params = {"ServerSideEncryption": sse}
        if sse == "aws:kms" and _s3("KMS_KEY_ID"):
            params["SSEKMSKeyId"] = str(_s3("KMS_KEY_ID"))
        return params

    def _put(self, client: Any, key: str, data: bytes, *, media_type: str, sha256: str, tags: dict[str, str]) -> None:
        client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=media_type,
            # S3 refuses the write unless the bytes it got have this digest, keeps it, and
            # returns it on reads in checksum mode (``open``), where botocore checks it.
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
            Tagging=urlencode(tags),
            **self._encryption(),
        )

    def write(self, key: str, data: bytes, *, media_type: str, sha256: str, expires_at: datetime) -> None:
        tags = dict([RETENTION_TAG, ("honua-expires", expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"))])
        self._put(self.client(), key, data, media_type=media_type, sha256=sha256, tags=tags)

    def open(self, key: str) -> IO[bytes]:
        from botocore.exceptions import ClientError

        try:
            # ChecksumMode: botocore checks the bytes read against the stored SHA-256.
            response = self.client().get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _missing(exc):
                raise ArtifactGone(key) from exc
            raise
        return io.BufferedReader(_S3Body(response["Body"]), buffer_size=256 * 1024)

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=key)

    def check(self) -> dict[str, Any]:
        """A real write and delete of a small object, on a client with the /readyz timeouts."""
        from botocore.exceptions import BotoCoreError, ClientError

        if not self.bucket:
            raise StoreNotReady("s3 store: no bucket is configured (HONUA_S3_BUCKET)")
        client = self.client("probe")
        key = self.object_key(f".readyz/{uuid.uuid4()}")
        try:
            self._put(client, key, b"ok", media_type="text/plain", sha256=hashlib.sha256(b"ok").hexdigest(),
                      tags=dict([RETENTION_TAG]))
            client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            log.warning("readiness: S3 bucket %r refused a write: %s", self.bucket, exc)
            raise StoreNotReady(f"s3 store: the bucket does not take writes ({code})") from exc
        except BotoCoreError as exc:
            log.warning("readiness: S3 bucket %r unreachable: %s", self.bucket, exc)
            raise StoreNotReady(f"s3 store: S3 did not answer ({type(exc).__name__})") from exc
        return {"store": self.name}

    def direct_link(self, key: str, *, name: str, media_type: str, seconds: int) -> str | None:
        return str(
            self.client().generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentType": media_type,
                    "ResponseContentDisposition": content_disposition_header(True, _file_name(name, media_type)),
                },
                ExpiresIn=seconds,
            )
        )


def _file_name(name: str, media_type: str) -> str:
    """An artifact's download name: its name, with an extension its media type gives."""
    extensions = EXTENSIONS.get(media_type.split(";")[0].strip().lower(), ())
    if "." in name or not extensions:
        return name
    return f"{name}.{extensions[0]}"


LIFECYCLE_RULE_ID = "honua-artifacts-expiry"


def s3_lifecycle_install(*, days: int) -> dict[str, Any]:
    """Install (or replace) the bucket lifecycle rule that expires Honua's objects (its prefix,
    tagged ``honua-retention=ttl``) ``days`` after they were written; the bucket's other rules
    stay. Honua deletes expired artifacts itself: this catches what it could not (a write whose
    transaction rolled back, a deletion that failed). Returns the rule."""
    from botocore.exceptions import ClientError

    store = _STORES[S3ArtifactStore.name]
    assert isinstance(store, S3ArtifactStore)
    client = store.client()
    tag = {"Key": RETENTION_TAG[0], "Value": RETENTION_TAG[1]}
    prefix = str(_s3("PREFIX") or "")
    rule: dict[str, Any] = {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": prefix, "Tags": [tag]}} if prefix else {"Tag": tag},
        "Expiration": {"Days": int(days)},
    }
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    rules = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID] + [rule]
    client.put_bucket_lifecycle_configuration(Bucket=store.bucket, LifecycleConfiguration={"Rules": rules})
    return rule


_STORES: dict[str, ArtifactStore] = {s.name: s for s in (LocalArtifactStore(), S3ArtifactStore())}


def artifact_store(name: str | None = None) -> ArtifactStore:
    """The store named ``name`` (the value of ``Artifact.store``); None: where new bytes go."""
    return _STORES[name or str(settings.HONUA.get("ARTIFACT_STORE") or "local")]


def artifact_stores() -> list[ArtifactStore]:
    """Every store this server writes to (readiness checks each)."""
    return [artifact_store()]


def artifact_create(
    *,
    tenant_id: int,
    run_id: uuid.UUID | str | None,
    name: str,
    data: bytes,
    media_type: str,
    expires_at: datetime | None = None,
) -> Artifact:
    """Store bytes and record them; the caller gets the Artifact row. ``expires_at``: the
    results TTL from now unless given."""
    artifact_id = uuid.uuid4()
    store = artifact_store()
    key = store.object_key(f"{tenant_id}/{run_id or 'none'}/{artifact_id}")
    sha256 = hashlib.sha256(data).hexdigest()
    expires = expires_at or timezone.now() + timedelta(hours=settings.HONUA["RESULT_TTL_HOURS"])
    store.write(key, data, media_type=media_type, sha256=sha256, expires_at=expires)
    return Artifact.objects.create(
        id=artifact_id,
        tenant_id=tenant_id,
        run_id=run_id,
        name=name,
        store=store.name,
        key=key,
        media_type=media_type,
        size=len(data),
        sha256=sha256,
        expires_at=expires,
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


def artifact_stream(artifact: Artifact) -> IO[bytes]:
    """The artifact's bytes as a binary file object, read as the caller goes (the caller
    closes it); ArtifactGone when its store no longer has them."""
    return artifact_store(artifact.store).open(artifact.key)


def artifact_read(artifact: Artifact) -> bytes:
    """The artifact's bytes, whole (for callers that need them all); ArtifactGone when gone."""
    with artifact_stream(artifact) as stream:
        return stream.read()


def _signature(artifact_id: str, expires: int) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"{artifact_id}:{expires}".encode(), hashlib.sha256
    ).hexdigest()


def _link_seconds(expires_at: datetime | None) -> int:
    """A presigned link's lifetime: the setting, never past the artifact's own expiry."""
    seconds = int(settings.HONUA.get("S3_PRESIGN_SECONDS") or 0) or int(settings.HONUA["ARTIFACT_LINK_SECONDS"])
    if expires_at is not None:
        seconds = min(seconds, int((expires_at - timezone.now()).total_seconds()))
    return max(1, seconds)


def artifact_link(artifact_id: uuid.UUID | str, *, base_url: str) -> dict[str, Any]:
    """An expiring link to an artifact: straight at its store when the store has such links
    (S3: presigned), else Honua's signed /artifacts/ URL, which serves an artifact of any store
    (and answers 404 for an id not found). While new artifacts go to the local store, every
    link is Honua's: no query per link."""
    row = (
        Artifact.objects.filter(id=artifact_id).values_list("store", "key", "name", "media_type", "expires_at").first()
        if artifact_store().direct_links and _is_uuid(artifact_id)
        else None
    )
    if row is not None and row[0] in _STORES and _STORES[row[0]].direct_links:
        store, key, name, media_type, expires_at = row
        seconds = _link_seconds(expires_at)
        href = _STORES[store].direct_link(key, name=name, media_type=media_type, seconds=seconds)
        if href:
            return {"href": href, "expires": int(time.time()) + seconds}
    expires = int(time.time()) + settings.HONUA["ARTIFACT_LINK_SECONDS"]
    sig = _signature(str(artifact_id), expires)
    return {
        "href": f"{base_url.rstrip('/')}/artifacts/{artifact_id}?expires={expires}&sig={sig}",
        "expires": expires,
    }


def _is_uuid(value: uuid.UUID | str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def artifact_link_valid(artifact_id: str, expires: str, sig: str) -> bool:
    try:
        exp = int(expires)
    except (TypeError, ValueError):
        return False
    return exp >= time.time() and hmac.compare_digest(_signature(artifact_id, exp), sig or "")


__all__ = [
    "artifact_create", "artifact_link", "artifact_link_valid", "artifact_read", "artifact_stream", "signing",
]
