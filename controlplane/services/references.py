"""Feature inputs given by reference to an Esri feature service layer, read on the client's behalf.

A GPServer client may pass a feature input as ``{"url": ".../FeatureServer/0", "filter":
"<where>"}``; the adapter turns it into ``{"href", "filter", "kind": "esri-feature-service"}``
and ``run_submit`` resolves it here, before validation and admission, so the run's inputs
(the ledger) hold the features that were read and the limits count them. The layer is read
with its ``query`` operation (``where``, every field, geometry in the requested spatial
reference, JSON), page after page while it reports ``exceededTransferLimit``, only through
the SSRF guard of ``controlplane.services.outbound``. Every failure of the remote end is an
InvalidParameterValue naming the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from django.conf import settings

from controlplane.contracts import ParamSpec, ParamType, ProcessSpec
from controlplane.exceptions import (
    InvalidParameterValue,
    OutboundFailed,
    OutboundRefused,
    OutboundTooLarge,
)
from controlplane.services import esrijson
from controlplane.services.outbound import outbound_fetch

ESRI_FEATURE_SERVICE = "esri-feature-service"
_FEATURE_TYPES = (ParamType.FEATURE_COLLECTION, ParamType.GEOMETRY)
_LAYER_PATH = re.compile(r"^(?P<layer>.*/(?:FeatureServer|MapServer)/\d+)(?:/query)?/?$", re.IGNORECASE)
# A server that answers pages without end (or ignores resultOffset) stops here at the latest.
MAX_PAGES = 1000


def is_feature_service_reference(value: Any) -> bool:
    return isinstance(value, dict) and value.get("kind") == ESRI_FEATURE_SERVICE and bool(value.get("href"))


def _holds_reference(value: Any) -> bool:
    if isinstance(value, list):
        return any(is_feature_service_reference(v) for v in value)
    return is_feature_service_reference(value)


def _shown(url: str) -> str:
    """A URL as messages may show it: without its query, which may carry a token."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dataclass
class _Read:
    """What has been read of one layer so far."""

    features: list[dict[str, Any]] = field(default_factory=list)
    fields: list[dict[str, str]] | None = None
    srid: int | None = None
    ids: set[Any] = field(default_factory=set)
    size: int = 0


def _query_url(href: str, where: str) -> tuple[str, list[tuple[str, str]]]:
    """The layer's query URL and the parameters the reference's own URL carries (a token)."""
    parts = urlsplit(href)
    match = _LAYER_PATH.match(parts.path)
    if match is None:
        raise InvalidParameterValue(
            f"{where}: {_shown(href)} is not a feature service layer; give the URL of a layer or "
            "table, ending in /FeatureServer/<n> or /MapServer/<n>"
        )
    own = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "f"]
    return urlunsplit((parts.scheme, parts.netloc, match.group("layer") + "/query", "", "")), own


def _page(
    url: str, params: dict[str, str], where: str, *, timeout: float, max_bytes: int, tenant: str | None
) -> tuple[dict[str, Any], int]:
    """One answer of the layer's query operation as a JSON object, and its size."""
    try:
        response = outbound_fetch(
            f"{url}?{urlencode(params)}", tenant=tenant, timeout=timeout, max_bytes=max_bytes,
            headers={"Accept": "application/json"},
        )
    except (OutboundRefused, OutboundTooLarge) as exc:
        raise type(exc)(f"{where}: {exc.message}", details=[_shown(url)]) from None
    except OutboundFailed as exc:  # the client's URL did not answer: their input, not our fault
        raise InvalidParameterValue(f"{where}: {exc.message}", details=[_shown(url)]) from None
    if response.status != 200:
        raise InvalidParameterValue(
            f"{where}: the feature service answered HTTP {response.status}", details=[_shown(url)]
        )
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        kind = response.media_type or "an unknown type"
        raise InvalidParameterValue(
            f"{where}: the feature service did not answer JSON (it sent {kind})", details=[_shown(url)]
        ) from None
    if not isinstance(doc, dict):
        raise InvalidParameterValue(f"{where}: the feature service answered no JSON object", details=[_shown(url)])
    error = doc.get("error")
    if error is not None:
        error = error if isinstance(error, dict) else {"message": str(error)}
        details = [str(d) for d in error.get("details") or [] if d]
        raise InvalidParameterValue(
            f"{where}: the feature service answered an error: {error.get('code', '')} "
            f"{error.get('message') or 'no message'}".replace(":  ", ": "),
            details=[*details, _shown(url)],
        )
    if not isinstance(doc.get("features"), list):
        raise InvalidParameterValue(
            f"{where}: the feature service's answer has no 'features' (is the URL a layer's?)",
            details=[_shown(url)],
        )
    return doc, len(response.content)


def feature_service_read(
    reference: dict[str, Any], *, where: str, srid: int, max_features: int, max_bytes: int, timeout: float,
    tenant: str | None = None,
) -> dict[str, Any]:
    """The features of a feature service layer matching the reference's filter, as an internal
    feature collection in ``srid`` (the service reprojects them)."""
    href = str(reference["href"])
    url, own = _query_url(href, where)
    base = {
        **dict(own),
        "where": str(reference.get("filter") or "").strip() or "1=1",
        "outFields": "*",
        "returnGeometry": "true",
        "outSR": str(srid),
        "f": "json",
    }
    if reference.get("time") not in (None, ""):
        base["time"] = str(reference["time"])
    read = _Read()
    for page_number in range(MAX_PAGES):
        params = dict(base)
        if read.features:
            params["resultOffset"] = str(len(read.features))
        doc, size = _page(url, params, where, timeout=timeout, max_bytes=max_bytes - read.size, tenant=tenant)
        read.size += size
        page = esrijson.featureset_to_internal(doc, f"{where}: page {page_number + 1} of {_shown(href)}")
        if read.srid is None:
            read.srid = page["srid"] if esrijson.featureset_srid(doc, where) is not None else srid
            read.fields = page.get("fields")
        new = page["features"]
        ids = [f.get("id") for f in new if f.get("id") is not None]
        if new and ids and len(ids) == len(new) and all(i in read.ids for i in ids):
            # The same features again: the service ignores resultOffset (no pagination).
            raise InvalidParameterValue(
                f"{where}: the layer holds more features than one answer of its service gives, "
                "and the service does not page (resultOffset); narrow the filter",
                details=[_shown(href)],
            )
        read.ids.update(ids)
        read.features.extend(new)
        if len(read.features) > max_features:
            raise InvalidParameterValue(
                f"{where}: the layer gives more than {max_features} features, the most this "
                "process takes; narrow the filter",
                details=[_shown(href)],
            )
        if not doc.get("exceededTransferLimit"):
            break
        if not new:
            raise InvalidParameterValue(
                f"{where}: the feature service reports more features but sent none", details=[_shown(href)]
            )
    else:
        raise InvalidParameterValue(f"{where}: the layer did not end after {MAX_PAGES} pages", details=[_shown(href)])
    out: dict[str, Any] = {"type": "FeatureCollection", "srid": read.srid or srid, "features": read.features}
    if read.fields is not None:
        out["fields"] = read.fields
    return out


def _as_geometry(collection: dict[str, Any], where: str) -> dict[str, Any]:
    geoms = [f["geometry"] for f in collection["features"] if f.get("geometry")]
    if len(geoms) != 1:
        raise InvalidParameterValue(f"{where} takes one geometry; the layer gave {len(geoms)} with this filter")
    return {**geoms[0], "srid": collection["srid"]}


def reference_inputs_resolve(
    *, spec: ProcessSpec, inputs: dict[str, Any], limits: dict[str, Any] | None = None, srid: int | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """Inputs with each feature-service reference replaced by the features it names, read in
    ``srid`` (EPSG:4326 when None). The process's ``max_features`` / ``max_bytes`` (else the
    HONUA_REFERENCE_* settings) bound what one input may bring."""
    params: dict[str, ParamSpec] = {p.name: p for p in spec.inputs if p.type in _FEATURE_TYPES}
    if not any(_holds_reference(inputs.get(name)) for name in params):
        return inputs
    limits = limits or {}
    honua = settings.HONUA
    max_features = int(limits.get("max_features") or honua.get("REFERENCE_MAX_FEATURES", 100000))
    max_bytes = int(limits.get("max_bytes") or honua.get("REFERENCE_MAX_BYTES", 50 * 1024 * 1024))
    timeout = float(honua.get("REFERENCE_TIMEOUT_SECONDS", 30.0))
    out = dict(inputs)
    for name, param in params.items():
        value = inputs.get(name)
        if not _holds_reference(value):
            continue
        where = f"input {name!r}"
        values = value if isinstance(value, list) else [value]
        resolved = []
        for v in values:
            if isinstance(v, dict) and is_feature_service_reference(v):
                v = feature_service_read(
                    v, where=where, srid=srid or esrijson.DEFAULT_SRID, max_features=max_features,
                    max_bytes=max_bytes, timeout=timeout, tenant=tenant,
                )
                if param.type is ParamType.GEOMETRY:
                    v = _as_geometry(v, where)
            resolved.append(v)
        out[name] = resolved if isinstance(value, list) else resolved[0]
    return out
