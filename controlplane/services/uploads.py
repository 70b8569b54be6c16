"""Uploaded items (GPServer ``uploads``): one-shot or multi-part, stored as artifacts.

A client uploads a file once (``upload_create``) or registers an item, sends it in parts
and commits them (``upload_register`` / ``upload_part`` / ``upload_commit``). Then it
passes ``{"itemID": ...}`` as a file input; adapters turn that into the internal
``{"upload": "<item id>"}`` and ``run_submit`` resolves it (``upload_inputs_resolve``) to
the upload's artifact. Every query is scoped to the principal's tenant, and the type of a
file is told by its content, never by its name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlplane.contracts import ParamSpec, ParamType, Principal, ProcessSpec
from controlplane.exceptions import (
    InvalidParameterValue,
    InvalidRequest,
    NoSuchUpload,
    PayloadTooLarge,
    UnsupportedMediaType,
    UploadNotCommitted,
)
from controlplane.models import Artifact, ProcessDefinition, UploadItem, UploadPart
from controlplane.services.access import is_anonymous
from controlplane.services.artifacts import (
    ArtifactGone,
    artifact_create,
    artifact_read,
    artifact_stream,
)
from controlplane.services.audit import audit_record
from controlplane.services.jsonbounds import json_loads_bounded
from controlplane.services.mediatypes import EXTENSIONS, OCTETS, REFUSED, media_type_sniff
from controlplane.services.policy import policy_cached, tenant_get
from controlplane.services.runs import artifacts_delete
from executors.base import InvalidInput

MAX_PARTS = 10_000
_FILE_TYPES = (ParamType.FILE.value, ParamType.RASTER.value)
_FEATURE_TYPES = (ParamType.FEATURE_COLLECTION.value, ParamType.GEOMETRY.value)


# --- limits ----------------------------------------------------------------------------------


def _max_bytes() -> int:
    return int(settings.HONUA.get("UPLOAD_MAX_BYTES", 100 * 1024 * 1024))


def _allowed_media_types() -> set[str]:
    configured = settings.HONUA.get("UPLOAD_MEDIA_TYPES") or list(EXTENSIONS)
    return {m.strip().lower() for m in configured if m.strip()} - REFUSED


def _ttl() -> timedelta:
    return timedelta(hours=float(settings.HONUA.get("UPLOAD_TTL_HOURS", 24.0)))


def uploads_info() -> dict[str, Any]:
    """The limits clients are told: Esri's ``maxUploadFileSize`` is in MB (rounded down)."""
    allowed = _allowed_media_types()
    extensions = sorted({ext for media in allowed for ext in EXTENSIONS.get(media, ())})
    return {
        "maxUploadFileSize": max(1, _max_bytes() // (1024 * 1024)),
        "maxUploadFileSizeBytes": _max_bytes(),
        "allowedUploadFileTypes": extensions,
        "allowedMediaTypes": sorted(allowed),
    }


def _check_size(size: int, what: str) -> None:
    limit = _max_bytes()
    if size > limit:
        raise PayloadTooLarge(f"{what} is {size} bytes; uploads may be at most {limit} bytes")


def _check_type(data: bytes, name: str) -> str:
    media = media_type_sniff(data)
    allowed = _allowed_media_types()
    if media not in allowed:
        kinds = ", ".join(sorted({e for m in allowed for e in EXTENSIONS.get(m, ())})) or "none"
        raise UnsupportedMediaType(
            f"{name!r} is {media} by its content, which is not accepted; accepted file types: {kinds}"
        )
    return media


def _clean_name(name: str) -> str:
    """The file name a client gave, without any directory part (browsers send paths)."""
    base = re.split(r"[\\/]", name.strip())[-1].strip()
    if not base:
        raise InvalidParameterValue("an upload needs a file name (itemName)")
    return base[:255]


# --- reads -----------------------------------------------------------------------------------


def _item_id(item_id: str) -> str:
    """Item ids as clients may spell them (Esri prints ``i`` + a dashed GUID)."""
    return str(item_id).strip().lower().replace("-", "").replace("{", "").replace("}", "")


def upload_get(*, principal: Principal, item_id: str) -> UploadItem:
    """One upload of the principal's tenant; NoSuchUpload when absent, expired or another's."""
    query = UploadItem.objects.filter(
        id=_item_id(item_id), tenant_id=tenant_get(principal.tenant).pk, expires_at__gt=timezone.now()
    )
    if is_anonymous(principal):  # an anonymous caller reaches only anonymous uploads
        query = query.filter(user__isnull=True)
    item = query.select_related("artifact").first()
    if item is None:
        raise NoSuchUpload(f"no uploaded item {item_id}")
    return item


def upload_bytes(*, principal: Principal, item_id: str) -> bytes:
    """The committed bytes of an upload."""
    item = upload_get(principal=principal, item_id=item_id)
    if not item.committed or item.artifact is None:
        raise UploadNotCommitted(f"item {item.id} is registered but not committed")
    return _item_bytes(item)


def upload_stream(*, principal: Principal, item_id: str) -> tuple[UploadItem, IO[bytes]]:
    """A committed upload and its bytes as a binary file object (the caller closes it)."""
    item = upload_get(principal=principal, item_id=item_id)
    if not item.committed or item.artifact is None:
        raise UploadNotCommitted(f"item {item.id} is registered but not committed")
    try:
        return item, artifact_stream(item.artifact)
    except ArtifactGone as exc:
        raise NoSuchUpload(f"the bytes of item {item.id} are no longer stored") from exc


def _item_bytes(item: UploadItem) -> bytes:
    """A committed item's bytes; NoSuchUpload when its store no longer has them."""
    try:
        if item.artifact is None:
            raise ArtifactGone(item.id)
        return artifact_read(item.artifact)
    except ArtifactGone as exc:
        raise NoSuchUpload(f"the bytes of item {item.id} are no longer stored") from exc


def upload_part_numbers(*, principal: Principal, item_id: str) -> list[int]:
    """The part numbers received so far for a registered item."""
    item = upload_get(principal=principal, item_id=item_id)
    return list(item.parts.order_by("part_number").values_list("part_number", flat=True))


# --- writes ----------------------------------------------------------------------------------


def _snapshot(item: UploadItem) -> dict[str, Any]:
    return {
        "item_name": item.item_name,
        "committed": item.committed,
        "size": item.size,
        "media_type": item.media_type,
        "sha256": item.sha256,
    }


def _store(item: UploadItem, data: bytes, media: str) -> None:
    """Keep ``data`` as the item's artifact (expiring with the item) and commit the item."""
    artifact = artifact_create(
        tenant_id=item.tenant_id, run_id=None, name=item.item_name, data=data, media_type=media,
        expires_at=item.expires_at,
    )
    item.artifact = artifact
    item.committed = True
    item.size = artifact.size
    item.media_type = media
    item.sha256 = artifact.sha256


def upload_create(*, principal: Principal, name: str, data: bytes, description: str = "") -> UploadItem:
    """A one-shot upload, committed at once."""
    item_name = _clean_name(name)
    _check_size(len(data), repr(item_name))
    media = _check_type(data, item_name)
    tenant = tenant_get(principal.tenant)
    with transaction.atomic():
        item = UploadItem(
            tenant_id=tenant.pk,
            user_id=principal.user_id,
            principal=principal.username,
            item_name=item_name,
            description=description or "",
            expires_at=timezone.now() + _ttl(),
        )
        _store(item, data, media)
        item.save(force_insert=True)
        audit_record(
            action="upload.create", object_type="upload", object_id=item.id, actor=principal.username,
            tenant_id=tenant.pk, after=_snapshot(item),
        )
    return item


def upload_register(*, principal: Principal, name: str, description: str = "") -> UploadItem:
    """An item to be sent in parts (not committed yet)."""
    tenant = tenant_get(principal.tenant)
    with transaction.atomic():
        item = UploadItem.objects.create(
            tenant_id=tenant.pk,
            user_id=principal.user_id,
            principal=principal.username,
            item_name=_clean_name(name),
            description=description or "",
            expires_at=timezone.now() + _ttl(),
        )
        audit_record(
            action="upload.register", object_type="upload", object_id=item.id, actor=principal.username,
            tenant_id=tenant.pk, after=_snapshot(item),
        )
    return item


def _locked(principal: Principal, item_id: str) -> UploadItem:
    item = (
        UploadItem.objects.select_for_update()
        .filter(id=upload_get(principal=principal, item_id=item_id).id)
        .first()
    )
    if item is None:
        raise NoSuchUpload(f"no uploaded item {item_id}")
    return item


def upload_part(*, principal: Principal, item_id: str, part_number: int, data: bytes) -> UploadItem:
    """Store one part of a registered item; sending a part number again replaces it."""
    if isinstance(part_number, bool) or not isinstance(part_number, int) or not 1 <= part_number <= MAX_PARTS:
        raise InvalidParameterValue(f"partNumber must be a whole number from 1 to {MAX_PARTS}")
    with transaction.atomic():
        item = _locked(principal, item_id)
        if item.committed:
            raise InvalidRequest(f"item {item.id} is already committed; register a new item")
        others = item.parts.exclude(part_number=part_number)
        stored = sum(others.values_list("size", flat=True))
        _check_size(stored + len(data), f"item {item.id} with part {part_number}")
        replaced = item.parts.filter(part_number=part_number).values("artifact_id")
        artifacts_delete(Artifact.objects.filter(pk__in=replaced))
        artifact = artifact_create(
            tenant_id=item.tenant_id, run_id=None, name=f"{item.item_name}.part{part_number}",
            data=data, media_type=OCTETS, expires_at=item.expires_at,
        )
        UploadPart.objects.create(upload=item, part_number=part_number, artifact=artifact, size=len(data))
    return item


def _checksum_ok(data: bytes, checksum: str) -> bool:
    """``checksum``: hex MD5 (what Esri documents) or hex SHA-256 of the whole file."""
    given = checksum.strip().lower()
    if re.fullmatch(r"[0-9a-f]{32}", given):
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    elif re.fullmatch(r"[0-9a-f]{64}", given):
        digest = hashlib.sha256(data).hexdigest()
    else:
        raise InvalidParameterValue("checksum must be the hex MD5 or SHA-256 of the whole file")
    return hmac.compare_digest(digest, given)


def upload_commit(
    *, principal: Principal, item_id: str, parts: list[int] | None = None, checksum: str | None = None
) -> UploadItem:
    """Join the parts (``parts`` in that order; None: every part by number), check the
    checksum when given, and commit the item. The parts stay when the checksum is wrong."""
    with transaction.atomic():
        item = _locked(principal, item_id)
        if item.committed:
            raise InvalidRequest(f"item {item.id} is already committed")
        stored = {p.part_number: p for p in item.parts.select_related("artifact")}
        if not stored:
            raise InvalidRequest(f"item {item.id} has no parts to commit")
        order = sorted(stored) if parts is None else list(parts)
        if not order:
            raise InvalidParameterValue("parts must list at least one part number")
        if len(set(order)) != len(order):
            raise InvalidParameterValue("parts lists a part number twice")
        missing = [n for n in order if n not in stored]
        if missing:
            raise InvalidParameterValue(
                f"item {item.id} has no part {missing[0]}; received parts: " + ", ".join(map(str, sorted(stored)))
            )
        _check_size(sum(stored[n].size for n in order), f"item {item.id}")
        try:
            data = b"".join(artifact_read(stored[n].artifact) for n in order)
        except ArtifactGone as exc:
            raise InvalidRequest(f"a part of item {item.id} is no longer stored; send it again") from exc
        if checksum and not _checksum_ok(data, checksum):
            raise InvalidParameterValue(f"checksum mismatch for item {item.id}: the parts were kept, commit again")
        media = _check_type(data, item.item_name)
        part_artifacts = [p.artifact_id for p in stored.values()]
        _store(item, data, media)
        item.save(update_fields=["artifact", "committed", "size", "media_type", "sha256"])
        # Deleting the part artifacts cascades to the part rows.
        artifacts_delete(Artifact.objects.filter(pk__in=part_artifacts))
        audit_record(
            action="upload.commit", object_type="upload", object_id=item.id, actor=principal.username,
            tenant_id=item.tenant_id, after=_snapshot(item),
        )
    return item


def upload_delete(*, principal: Principal, item_id: str) -> None:
    """Remove an upload, its parts and their stored bytes."""
    with transaction.atomic():
        item = _locked(principal, item_id)
        before = _snapshot(item)
        artifact_ids = [*item.parts.values_list("artifact_id", flat=True)]
        if item.artifact_id:
            artifact_ids.append(item.artifact_id)
        item_pk = item.pk
        item.delete()
        artifacts_delete(Artifact.objects.filter(pk__in=artifact_ids))
        audit_record(
            action="upload.delete", object_type="upload", object_id=item_pk, actor=principal.username,
            tenant_id=item.tenant_id, before=before,
        )


def uploads_expire(*, limit: int = 500) -> int:
    """Periodic: remove uploads past their expiry, with their bytes."""
    with transaction.atomic():
        items = list(
            UploadItem.objects.select_for_update(skip_locked=True)
            .filter(expires_at__lte=timezone.now())
            .values_list("id", "artifact_id")[:limit]
        )
        if not items:
            return 0
        ids = [i for i, _ in items]
        artifact_ids = [a for _, a in items if a]
        artifact_ids += UploadPart.objects.filter(upload_id__in=ids).values_list("artifact_id", flat=True)
        UploadItem.objects.filter(id__in=ids).delete()
        artifacts_delete(Artifact.objects.filter(pk__in=artifact_ids))
    return len(items)


# --- file inputs -----------------------------------------------------------------------------


def _holds(value: Any, key: str) -> bool:
    """A file value (or a list of them) with ``key``: a reference to resolve."""
    if isinstance(value, list):
        return any(isinstance(v, dict) and key in v for v in value)
    return isinstance(value, dict) and key in value


def _upload_params(spec: ProcessSpec) -> dict[str, ParamSpec]:
    return {p.name: p for p in spec.inputs if p.type.value in _FILE_TYPES + _FEATURE_TYPES}


def _geojson_srid(crs: Any, where: str) -> int:
    """The EPSG code of a GeoJSON (2008) ``crs`` member; EPSG:4326 without one."""
    if crs is None:
        return 4326
    name = (crs.get("properties") or {}).get("name") if isinstance(crs, dict) else crs
    text = str(name or "")
    if re.search(r"CRS:?84$", text, re.I):
        return 4326
    found = re.search(r"EPSG:{1,2}(?:[\d.]*:)?(\d+)$", text, re.I)
    if not found:
        raise InvalidParameterValue(f"{where}: unknown crs {text!r} in the uploaded GeoJSON")
    return int(found.group(1))


def _features_from(param: ParamSpec, item: UploadItem, data: bytes) -> dict[str, Any]:
    """An uploaded GeoJSON file as the internal geometry or feature collection."""
    where = f"input {param.name!r}"
    if item.media_type != "application/geo+json":
        raise InvalidParameterValue(
            f"{where}: item {item.id} is {item.media_type}; a feature input takes an uploaded GeoJSON file"
        )
    doc = json_loads_bounded(data, where=f"{where}: item {item.id}", error=InvalidParameterValue)
    srid = _geojson_srid(doc.get("crs"), where)
    doc = {k: v for k, v in doc.items() if k != "crs"}
    if param.type is ParamType.GEOMETRY:
        if doc.get("type") == "FeatureCollection":
            features = doc.get("features") or []
            if len(features) != 1:
                raise InvalidParameterValue(f"{where} takes one geometry; item {item.id} has {len(features)}")
            doc = features[0]
    return geojson_input(doc, srid=srid, geometry=param.type is ParamType.GEOMETRY)


def geojson_input(doc: dict[str, Any], *, srid: int, geometry: bool) -> dict[str, Any]:
    """A GeoJSON object (geometry, Feature or FeatureCollection, no ``crs``) as the internal
    value of a geometry input (a Feature gives its geometry) or a feature input (wrapped in a
    FeatureCollection), with its ``srid``."""
    if geometry:
        if doc.get("type") == "Feature":
            doc = dict(doc.get("geometry") or {})
        return {**doc, "srid": srid}
    if doc.get("type") == "Feature":
        doc = {"type": "FeatureCollection", "features": [doc]}
    elif doc.get("type") != "FeatureCollection":
        doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": doc, "properties": {}}]}
    return {**doc, "srid": srid}


def upload_inputs_resolve(
    *, principal: Principal, spec: ProcessSpec, inputs: dict[str, Any], limits: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Inputs with each ``{"upload": "<item id>"}`` resolved, once the upload is known to
    be the tenant's (NoSuchUpload otherwise) and committed. A file or raster input becomes
    ``{"artifact": "<id>", "media_type", "size", "name", "upload"}`` (executors get the
    bytes, see ``file_inputs_load``); a feature collection or geometry input becomes the
    uploaded GeoJSON itself, so validation and admission see its features. Uploaded bytes
    count towards the process's ``max_bytes``."""
    params = _upload_params(spec)
    if not any(_holds(inputs.get(name), "upload") for name in params):
        return inputs
    out = dict(inputs)
    total = 0
    for name, param in params.items():
        value = inputs.get(name)
        values = value if isinstance(value, list) else [value]
        resolved = []
        for v in values:
            if isinstance(v, dict) and "upload" in v:
                item = upload_get(principal=principal, item_id=str(v["upload"]))
                if not item.committed or item.artifact is None:
                    raise UploadNotCommitted(f"input {name!r}: item {item.id} is not committed")
                total += item.size
                if param.type.value in _FEATURE_TYPES:
                    v = _features_from(param, item, _item_bytes(item))
                else:
                    accepted = [m.split(";")[0].strip() for m in param.media_types]
                    if accepted and OCTETS not in accepted and item.media_type not in accepted:
                        raise InvalidParameterValue(
                            f"input {name!r}: item {item.id} is {item.media_type}; expected " + ", ".join(accepted)
                        )
                    v = {
                        "artifact": str(item.artifact_id),
                        "media_type": item.media_type,
                        "size": item.size,
                        "name": item.item_name,
                        "upload": item.id,
                    }
            resolved.append(v)
        out[name] = resolved if isinstance(value, list) else resolved[0]
    max_bytes = (limits or {}).get("max_bytes")
    if max_bytes and total > max_bytes:
        raise PayloadTooLarge(f"the uploaded files are {total} bytes; {spec.id!r} accepts at most {max_bytes}")
    return out


def _stored_file_types(process_id: str) -> frozenset[str]:
    def load() -> frozenset[str]:
        spec = (
            ProcessDefinition.objects.filter(process_id=process_id, is_current=True)
            .values_list("spec", flat=True)
            .first()
        ) or {}
        return frozenset(p["name"] for p in spec.get("inputs", ()) if p.get("type") in _FILE_TYPES)

    return policy_cached(("file-inputs", process_id), load)


def file_inputs_load(*, tenant_id: int, process_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as executors get them: file inputs stored as artifact references become their
    bytes, ``{"value": <base64>, "media_type", "encoding": "base64", "name"}``. Only file
    and raster inputs of the process, only the run's own tenant's artifacts. Raises the
    executors' InvalidInput (the run fails) when the bytes are gone."""
    candidates = [k for k, v in inputs.items() if _holds(v, "artifact")]
    if not candidates:
        return inputs
    names = _stored_file_types(process_id)
    out = dict(inputs)
    for name in candidates:
        if name not in names:
            continue
        value = inputs[name]
        values = value if isinstance(value, list) else [value]
        loaded = []
        for v in values:
            if isinstance(v, dict) and "artifact" in v:
                art = Artifact.objects.filter(id=v["artifact"], tenant_id=tenant_id).first()
                try:
                    if art is None:
                        raise ArtifactGone(str(v["artifact"]))
                    data = artifact_read(art)
                except ArtifactGone as exc:
                    raise InvalidInput(f"input {name!r}: the uploaded file is no longer stored") from exc
                v = {
                    "value": base64.b64encode(data).decode(),
                    "media_type": v.get("media_type") or art.media_type,
                    "encoding": "base64",
                    "name": v.get("name") or art.name,
                }
            loaded.append(v)
        out[name] = loaded if isinstance(value, list) else loaded[0]
    return out
