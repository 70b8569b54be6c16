"""Catalog layers as run inputs and run outputs published as layers.

Inputs: a ``{"layer": ...}`` reference (contracts module docstring) becomes, at submission,
the stored ``{"source": LayerSource.to_json(), "count": n, "vertices": v}``; at execution
a database tier reads the source where it lives, the others get its features
(``layer_inputs_load``). Outputs: ``register_as`` is checked at submission
(``register_as_check``) and published, in the transaction that completes the run, by
``layer_outputs_publish``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.db import connection

from controlplane.contracts import OutputRequest, ParamType, Principal, ProcessSpec
from controlplane.exceptions import HonuaError, InvalidParameterValue, PermissionDenied
from executors.base import InvalidInput
from executors.geodata import write_features
from executors.layers.source import LayerSource, source_geometries_sql, source_read

COLLECTION_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
WRITER_ROLES = frozenset({"editor", "admin"})
_FEATURE_TYPES = (ParamType.FEATURE_COLLECTION, ParamType.GEOMETRY)
_REF_KEYS = frozenset({"layer", "bbox", "bbox_srid", "filter", "filter_lang"})


_COLLECTION_PATH = re.compile(r"collections/(?P<id>[^/?#]+)(?:/items)?/?")


def collection_in_url(href: str, root: str | None) -> str | None:
    """The collection id of ``href`` when it is one of this server's layers,
    ``<root>collections/{id}[/items]`` with ``root`` the OGC API root URL the request came
    to (same host and path), else None. Both surfaces take such a URL as a layer reference."""
    if not root:
        return None
    ref, base = urlsplit(href), urlsplit(root)
    if ref.netloc.lower() != base.netloc.lower() or not ref.path.startswith(base.path):
        return None
    match = _COLLECTION_PATH.fullmatch(ref.path[len(base.path):])
    return match.group("id") if match else None


def is_layer_ref(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("layer"), str) and set(value) <= _REF_KEYS


def is_layer_source(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("source"), dict) and "count" in value


def _vertices(source: LayerSource, count: int, limit: int | None) -> int:
    """Vertex count of the selected features: queried where the data lives (PostGIS), read
    for a file layer; skipped (estimated as one per feature) when the feature count is
    already over the process's limit, which refuses the run anyway."""
    if limit and count > limit:
        return count
    if source.storage == "postgis":
        from psycopg import sql

        inner, params = source_geometries_sql(source)
        query = sql.SQL("SELECT COALESCE(sum(ST_NPoints(s.geom)), 0) FROM ({}) AS s").format(inner)
        with connection.cursor() as cur:
            cur.execute(query.as_string(connection.connection), params)
            row = cur.fetchone()
        return int(row[0]) if row else 0
    import shapely

    features = source_read(source)
    return int(shapely.get_num_coordinates(features.geometries).sum())


def layer_inputs_resolve(
    *, principal: Principal, spec: ProcessSpec, inputs: dict[str, Any], limits: dict[str, Any]
) -> dict[str, Any]:
    """Layer references of feature and geometry inputs -> stored source descriptors.

    The layer must be the principal's tenant's (an unknown layer and another tenant's give
    the same error, naming the input); the filter is parsed and the selection counted."""
    out = dict(inputs)
    for p in spec.inputs:
        if p.type not in _FEATURE_TYPES or p.name not in inputs:
            continue
        value = inputs[p.name]
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, dict) and "source" in v for v in values):
            # Only this function makes source descriptors: a client's would bypass the
            # tenant check and name any table.
            raise InvalidParameterValue(f"input {p.name!r}: 'source' is not a member of a feature input")
        if not any(is_layer_ref(v) for v in values):
            continue
        resolved = []
        for v in values:
            if not is_layer_ref(v):
                resolved.append(v)
                continue
            resolved.append(_resolve_one(principal, p.name, p.type, v, limits))
        out[p.name] = resolved if isinstance(value, list) else resolved[0]
    return out


def _resolve_one(
    principal: Principal, name: str, ptype: ParamType, ref: dict[str, Any], limits: dict[str, Any]
) -> dict[str, Any]:
    from controlplane.selectors import layer_source_for

    cid = ref["layer"]
    where = f"input {name!r}"
    if not COLLECTION_ID.fullmatch(cid):
        raise InvalidParameterValue(f"{where}: {cid!r} is not a collection id")
    bbox = ref.get("bbox")
    if bbox is not None and not (
        isinstance(bbox, list | tuple)
        and len(bbox) in (4, 6)
        and all(isinstance(c, int | float) and not isinstance(c, bool) for c in bbox)
    ):
        raise InvalidParameterValue(f"{where}: the bbox of layer {cid!r} must be 4 or 6 numbers")
    if bbox is not None and len(bbox) == 6:
        bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
    filter_text = ref.get("filter")
    if filter_text is not None and not isinstance(filter_text, str):
        raise InvalidParameterValue(f"{where}: the filter of layer {cid!r} must be text")
    try:
        source, count = layer_source_for(
            principal=principal,
            collection_id=cid,
            bbox=list(bbox) if bbox is not None else None,
            bbox_srid=int(ref.get("bbox_srid") or 4326),
            filter=filter_text or None,
            filter_lang=str(ref.get("filter_lang") or "cql2-text"),
        )
    except HonuaError as exc:
        if exc.status == 404:
            # The reference is an input: a bad input is a 400, whatever the reason it is unknown.
            raise InvalidParameterValue(f"{where}: no layer {cid!r} in this tenant") from None
        if isinstance(exc, InvalidParameterValue):
            raise InvalidParameterValue(f"{where} (layer {cid!r}): {exc.message}", details=exc.details) from None
        raise
    if ptype is ParamType.GEOMETRY and count != 1:
        raise InvalidParameterValue(
            f"{where} takes one geometry; the reference to layer {cid!r} selects {count} features"
        )
    doc: dict[str, Any] = {
        "ref": dict(ref),
        "source": source.to_json(),
        "count": count,
        "vertices": _vertices(source, count, limits.get("max_features")),
    }
    if ptype is ParamType.GEOMETRY:
        doc["geometry"] = True
    return doc


def layer_refs_restore(inputs: dict[str, Any]) -> dict[str, Any]:
    """Stored inputs with their layer references as the client gave them (to submit a run
    again: the reference is resolved and checked anew)."""

    def one(v: Any) -> Any:
        return dict(v["ref"]) if is_layer_source(v) and isinstance(v.get("ref"), dict) else v

    return {k: [one(x) for x in v] if isinstance(v, list) else one(v) for k, v in inputs.items()}


def layer_inputs_load(*, inputs: dict[str, Any], in_database: bool) -> dict[str, Any]:
    """Inputs as an executor gets them: a tier working inside the database keeps the source
    descriptors (it reads the layer where it lives); any other tier gets the features."""
    if in_database:
        return inputs
    out = dict(inputs)
    for name, value in inputs.items():
        values = value if isinstance(value, list) else [value]
        if not any(is_layer_source(v) for v in values):
            continue
        loaded = []
        for v in values:
            if is_layer_source(v):
                v = _features_of(name, v)
            loaded.append(v)
        out[name] = loaded if isinstance(value, list) else loaded[0]
    return out


def _features_of(name: str, value: dict[str, Any]) -> dict[str, Any]:
    source = LayerSource.from_json(value["source"])
    try:
        features = source_read(source)
    except OSError as exc:
        raise InvalidInput(f"input {name!r}: layer {source.layer!r} cannot be read ({exc})") from exc
    doc = write_features(features)
    if value.get("geometry"):
        geoms = [f.get("geometry") for f in doc["features"]]
        if len(geoms) != 1 or geoms[0] is None:
            raise InvalidInput(f"input {name!r}: layer {source.layer!r} no longer holds one geometry")
        return {**geoms[0], "srid": doc["srid"]}
    return doc


def layer_sources(inputs: dict[str, Any], spec_inputs: dict[str, str]) -> dict[str, list[LayerSource | None]]:
    """Per feature/geometry input: its layer sources (None for inline data)."""
    out: dict[str, list[LayerSource | None]] = {}
    for name, value in inputs.items():
        if spec_inputs.get(name) not in (ParamType.FEATURE_COLLECTION.value, ParamType.GEOMETRY.value):
            continue
        values = value if isinstance(value, list) else [value]
        out[name] = [LayerSource.from_json(v["source"]) if is_layer_source(v) else None for v in values]
    return out


# --- results as layers -----------------------------------------------------------------------


def register_as_check(*, principal: Principal, spec: ProcessSpec, outputs: dict[str, OutputRequest]) -> None:
    """``register_as`` of the requested outputs: feature outputs only, a valid collection id
    free in the tenant (and not asked twice), a positive TTL, a principal who may write
    layers (editor or admin: else 403)."""
    from controlplane.selectors import layer_for_principal

    wanted = {name: o.register_as for name, o in outputs.items() if o.register_as}
    if not wanted:
        return
    if not WRITER_ROLES.intersection(principal.roles):
        raise PermissionDenied(
            f"publishing a result as a layer needs the editor or admin role of tenant {principal.tenant!r}"
        )
    seen: set[str] = set()
    for name, reg in wanted.items():
        where = f"output {name!r}"
        p = spec.output(name)
        if p is None or p.type is not ParamType.FEATURE_COLLECTION:
            raise InvalidParameterValue(f"{where} is not a feature collection; only those can be published as layers")
        cid = reg.get("collection_id")
        if not isinstance(cid, str) or not COLLECTION_ID.fullmatch(cid):
            raise InvalidParameterValue(
                f"{where}: registerAs collection id {cid!r} must start with a letter and hold at most 64 "
                "letters, digits, '_', '.' or '-'"
            )
        if cid in seen:
            raise InvalidParameterValue(f"{where}: collection id {cid!r} is asked for twice")
        seen.add(cid)
        title = reg.get("title")
        if title is not None and not isinstance(title, str):
            raise InvalidParameterValue(f"{where}: registerAs title must be text")
        ttl = reg.get("ttl_seconds")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
            raise InvalidParameterValue(f"{where}: registerAs ttl must be a positive number of seconds")
        try:
            layer_for_principal(principal=principal, collection_id=cid)
        except HonuaError as exc:
            if exc.status != 404:
                raise
        else:
            raise InvalidParameterValue(
                f"{where}: collection {cid!r} already exists in this tenant; choose another id"
            )


def layer_outputs_publish(
    *, tenant_id: int, run_id: str, outputs: dict[str, Any], output_requests: dict[str, dict[str, Any]],
    actor: str | None = None,
) -> list[tuple[str, str, int]]:
    """Publish the outputs asked ``register_as`` as hosted layers; (output, collection id,
    feature count) of each. Raises on failure: the caller fails the run."""
    from controlplane.services.layers import layer_publish

    published = []
    for name, req in output_requests.items():
        reg = (req or {}).get("register_as")
        if not reg:
            continue
        value = outputs.get(name)
        if not isinstance(value, dict) or value.get("type") != "FeatureCollection":
            raise InvalidInput(f"output {name!r} is not a feature collection; it cannot be published as a layer")
        ttl = reg.get("ttl_seconds")
        layer = layer_publish(
            tenant_id=tenant_id,
            collection_id=reg["collection_id"],
            title=reg.get("title") or reg["collection_id"],
            features=value,
            run_id=run_id,
            ttl_seconds=int(ttl) if ttl else None,
            actor=actor,
        )
        published.append((name, layer.collection_id, int(layer.feature_count or 0)))
    return published
