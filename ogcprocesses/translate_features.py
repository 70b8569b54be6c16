"""OGC API - Features - Part 1: Core 1.0 wire format <-> the layer catalog, and uploads.

Pure functions like ``translate.py``: a ``LayerInfo`` -> collection document; a ``LayerPage``
-> GeoJSON FeatureCollection with paging links; the items query string -> checked
parameters; an ingest body -> its fields; an uploaded item -> its document. Features are
served in CRS84 (``layer_items(out_srid=4326)``); ``bbox-crs`` (Part 2) is read for bbox.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

from controlplane import exceptions as errors
from controlplane.contracts import LayerInfo, LayerPage
from ogcprocesses.translate import (
    CRS84,
    EPSG_URI,
    FEATURES_CONF,
    FEATURES_CONFORMANCE_CLASSES,
    GEOJSON,
    JSON,
    Urls,
    crs_srid,
    link,
    own_upload,
    page_params,
    rfc3339,
)

FILTER_LANGS = ("cql2-text",)
# The query parameters of /items (Part 1 core; bbox-crs of Part 2; filter of Part 3); any other
# is refused (/req/core/query-param-unknown).
ITEMS_PARAMS = frozenset({"f", "bbox", "bbox-crs", "limit", "offset", "datetime", "filter", "filter-lang"})
_INGEST_KEYS = frozenset({"id", "title", "description", "upload", "storage", "srid", "sublayer"})
_COLLECTION_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


def conformance_classes() -> list[str]:
    return [FEATURES_CONF + c for c in FEATURES_CONFORMANCE_CLASSES]


# --- collections ----------------------------------------------------------------------------


def collection_href(urls: Urls, collection_id: str) -> str:
    return urls.href(f"collections/{collection_id}")


def collection(info: LayerInfo, urls: Urls) -> dict[str, Any]:
    """collection.yaml of a layer: links, spatial extent in CRS84, item type, CRS list."""
    href = collection_href(urls, info.id)
    doc: dict[str, Any] = {"id": info.id, "title": info.title or info.id}
    if info.description:
        doc["description"] = info.description
    doc["links"] = [
        link(href, "self", JSON, "this collection"),
        link(href + "/items", "items", GEOJSON, "the features (GeoJSON)"),
        link(urls.href("collections"), "collection", JSON, "all collections"),
    ]
    if info.extent is not None:
        doc["extent"] = {"spatial": {"bbox": [list(info.extent)], "crs": CRS84}}
    doc["itemType"] = "feature"
    doc["crs"] = [CRS84]
    # Honua's own members (prefixed: not part of the standard).
    doc["honua:geometryType"] = info.geometry_type
    doc["honua:featureCount"] = info.feature_count
    doc["honua:storage"] = info.storage
    doc["honua:storageCrs"] = EPSG_URI + str(info.srid)
    if info.expires:
        doc["honua:expires"] = rfc3339(info.expires)
    return doc


def collections(infos: Sequence[LayerInfo], urls: Urls) -> dict[str, Any]:
    """collections.yaml: every layer of the caller's tenant."""
    href = urls.href("collections")
    return {
        "links": [link(href, "self", JSON, "the collections")],
        "collections": [collection(i, urls) for i in infos],
    }


# --- items ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemsQuery:
    """The checked parameters of an items request."""

    limit: int
    offset: int
    bbox: tuple[float, float, float, float] | None
    bbox_srid: int
    filter: str | None
    filter_lang: str


def _bbox(raw: str | None, crs: str | None) -> tuple[tuple[float, float, float, float] | None, int]:
    if crs not in (None, "") and raw in (None, ""):
        raise errors.InvalidParameterValue("bbox-crs is given without a bbox")
    if raw in (None, ""):
        return None, 4326
    parts = str(raw).split(",")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise errors.InvalidParameterValue(f"bbox must be 4 (or 6) comma-separated numbers, not {raw!r}") from None
    if len(numbers) not in (4, 6) or not all(abs(n) != float("inf") and n == n for n in numbers):
        raise errors.InvalidParameterValue(f"bbox must be 4 (or 6) comma-separated numbers, not {raw!r}")
    if len(numbers) == 6:  # minx, miny, minz, maxx, maxy, maxz: the heights do not filter
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    srid = crs_srid(crs or CRS84, "bbox-crs")
    if srid == 4326 and str(crs or "").lower().startswith(("http://www.opengis.net/def/crs/epsg", "urn:ogc:def:crs:epsg", "epsg:")):
        # EPSG:4326 is latitude first (CRS84 is longitude first).
        numbers = [numbers[1], numbers[0], numbers[3], numbers[2]]
    minx, miny, maxx, maxy = numbers
    if miny > maxy:
        raise errors.InvalidParameterValue(f"bbox: the lower corner ({miny}) is above the upper one ({maxy})")
    if minx > maxx:
        raise errors.InvalidParameterValue(
            "bbox: minx is greater than maxx; a bbox across the antimeridian is not supported, "
            "send two requests"
        )
    if srid == 4326 and (miny < -90 or maxy > 90):
        raise errors.InvalidParameterValue("bbox: latitudes must be within -90 and 90")
    return (minx, miny, maxx, maxy), srid


_INSTANT = r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2}))?"


def _check_datetime(raw: str | None) -> None:
    """``datetime`` is part of the core: checked, then matched by every feature (layers carry
    no temporal extent)."""
    if raw in (None, ""):
        return
    ends = str(raw).split("/")
    if len(ends) > 2 or not all(re.fullmatch(_INSTANT, e) or (len(ends) == 2 and e in ("", "..")) for e in ends):
        raise errors.InvalidParameterValue(
            f"datetime must be an RFC 3339 instant or an interval a/b (.. open), not {raw!r}"
        )


def items_query(query: Mapping[str, str]) -> ItemsQuery:
    """The items query string, checked (400 for anything unknown or out of range)."""
    unknown = sorted(set(query) - ITEMS_PARAMS)
    if unknown:
        raise errors.InvalidParameterValue(
            f"unknown query parameter {unknown[0]!r}; items take " + ", ".join(sorted(ITEMS_PARAMS))
        )
    bbox, bbox_srid = _bbox(query.get("bbox"), query.get("bbox-crs"))
    _check_datetime(query.get("datetime"))
    text = query.get("filter")
    lang = query.get("filter-lang") or "cql2-text"
    if lang not in FILTER_LANGS:
        raise errors.InvalidParameterValue(f"filter-lang must be one of {', '.join(FILTER_LANGS)}, not {lang!r}")
    limit, offset = page_params(query)
    return ItemsQuery(
        limit=limit,
        offset=offset,
        bbox=bbox,
        bbox_srid=bbox_srid,
        filter=text if text not in (None, "") else None,
        filter_lang=lang,
    )


def _page_href(href: str, query: Mapping[str, str], offset: int, limit: int) -> str:
    params = {**{k: v for k, v in query.items()}, "limit": str(limit), "offset": str(offset)}
    return f"{href}?{urlencode(params)}"


def _geojson_feature(feature: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "Feature"}
    if feature.get("id") is not None:
        doc["id"] = feature["id"]
    doc["geometry"] = feature.get("geometry")
    doc["properties"] = feature.get("properties") or {}
    return doc


def now_stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def items(
    page: LayerPage, urls: Urls, collection_id: str, query: Mapping[str, str], params: ItemsQuery, *, stamp: str
) -> dict[str, Any]:
    """featureCollectionGeoJSON.yaml of one page: self/next/prev links keep the other parameters."""
    href = collection_href(urls, collection_id) + "/items"
    features = [_geojson_feature(f) for f in page.features.get("features") or []]
    links = [link(_page_href(href, query, params.offset, params.limit), "self", GEOJSON, "this page")]
    if params.offset + len(features) < page.number_matched:
        links.append(link(_page_href(href, query, params.offset + params.limit, params.limit), "next",
                          GEOJSON, "next page"))
    if params.offset > 0:
        links.append(link(_page_href(href, query, max(0, params.offset - params.limit), params.limit), "prev",
                          GEOJSON, "previous page"))
    links.append(link(collection_href(urls, collection_id), "collection", JSON, "the collection"))
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": page.number_matched,
        "numberReturned": len(features),
        "timeStamp": stamp,
        "links": links,
    }


def feature(doc: dict[str, Any], urls: Urls, collection_id: str) -> dict[str, Any]:
    """featureGeoJSON.yaml of one feature, with its self and collection links."""
    out = _geojson_feature(doc)
    href = collection_href(urls, collection_id)
    out["links"] = [
        link(f"{href}/items/{out.get('id')}", "self", GEOJSON, "this feature"),
        link(href, "collection", JSON, "the collection"),
    ]
    return out


# --- ingest ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestRequest:
    collection_id: str
    title: str
    description: str
    upload: str
    storage: str
    srid: int | None
    sublayer: str | None


def upload_id_of(value: Any, urls: Urls) -> str | None:
    """The item id in an href of this server's ``/uploads/{id}``; None for any other value."""
    upload = own_upload({"href": value}, urls.href("uploads/"))
    return upload["upload"] if upload else None


def ingest_request(body: Any, urls: Urls) -> IngestRequest:
    """``POST /collections`` body: {"id", "title", "description"?, "upload", "storage"?,
    "srid"?, "sublayer"?} (``upload``: an item id or this server's upload href)."""
    if not isinstance(body, dict):
        raise errors.InvalidRequest("the body must be a JSON object {id, title, upload, ...}")
    unknown = sorted(set(body) - _INGEST_KEYS)
    if unknown:
        raise errors.InvalidRequest(
            f"unknown member {unknown[0]!r}; a new collection takes " + ", ".join(sorted(_INGEST_KEYS))
        )
    for key in ("id", "upload"):
        if body.get(key) in (None, ""):
            raise errors.MissingParameter(f"a new collection needs {key!r}")
    for key in ("id", "title", "description", "upload", "storage", "sublayer"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise errors.InvalidParameterValue(f"{key!r} must be a string")
    collection_id = body["id"]
    if not _COLLECTION_ID.fullmatch(collection_id):
        raise errors.InvalidParameterValue(
            f"id {collection_id!r} is not a collection id: a letter, then up to 63 letters, digits, _ . -"
        )
    storage = body.get("storage") or "hosted"
    if storage not in ("hosted", "file"):
        raise errors.InvalidParameterValue(f"storage must be 'hosted' or 'file', not {storage!r}")
    srid = body.get("srid")
    if srid is not None and (isinstance(srid, bool) or not isinstance(srid, int) or srid <= 0):
        raise errors.InvalidParameterValue("srid must be a positive integer (an EPSG code)")
    upload = body["upload"]
    if upload.startswith(("http://", "https://")):
        item = upload_id_of(upload, urls)
        if item is None:
            raise errors.InvalidParameterValue(f"upload {upload!r} is not an upload of this server ({urls.href('uploads/')}...)")
        upload = item
    return IngestRequest(
        collection_id=collection_id,
        title=body.get("title") or collection_id,
        description=body.get("description") or "",
        upload=upload,
        storage=storage,
        srid=srid,
        sublayer=body.get("sublayer") or None,
    )


# --- uploads --------------------------------------------------------------------------------


def upload_href(urls: Urls, item_id: str) -> str:
    return urls.href(f"uploads/{item_id}")


def upload(item: Any, urls: Urls) -> dict[str, Any]:
    """An uploaded item (``UploadItem``): id, name, size, media type, expiry, self link."""
    doc: dict[str, Any] = {
        "id": str(item.id),
        "name": item.item_name,
        "size": int(item.size or 0),
        "mediaType": item.media_type or "application/octet-stream",
    }
    if item.description:
        doc["description"] = item.description
    if item.expires_at is not None:
        doc["expires"] = rfc3339(item.expires_at.isoformat())
    doc["links"] = [link(upload_href(urls, str(item.id)), "self", JSON, "this upload")]
    return doc


_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'[^']*')?"?([^";]+)"?""", re.I)


def upload_name(content_disposition: str | None, query_name: str | None) -> str:
    """The file name of a raw upload: ``?filename=``, else the Content-Disposition's."""
    if query_name:
        return query_name
    match = _FILENAME.search(content_disposition or "")
    if match is None:
        raise errors.MissingParameter(
            "an upload needs a file name: ?filename=<name> or Content-Disposition: attachment; filename=<name> "
            "(or a multipart body with the file in a field named 'file')"
        )
    return unquote(match.group(1).strip())
