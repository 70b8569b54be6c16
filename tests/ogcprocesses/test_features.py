"""OGC API - Features over the layer catalog, and uploads / ingest on both surfaces.

Layers are made with the catalog's own ingest from real data (the libpysal wheel's files);
every answer is compared with an independent read of the same file through GDAL (pyogrio),
reprojected with pyproj and clipped with shapely where the request asks for it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pyogrio.raw
import pytest
import shapely
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from pyproj import Transformer

from controlplane.models import Layer
from controlplane.services.layers import layer_ingest
from ogcprocesses import translate
from tests.executors.realdata.datasets import dataset_file
from tests.gpserver.support import ANALYSIS, assert_error
from tests.identity import fast_passwords, key_of, member, rule  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ogc")]

API = "/ogcapi/"
EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
FEATURES_CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON = "application/geo+json"


# --- real data, read independently -------------------------------------------------------------


def shapefile_zip(relative: str) -> bytes:
    """The shapefile's parts (.shp .shx .dbf .prj) zipped, as a user would upload them."""
    shp = dataset_file(relative)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for ext in (".shp", ".shx", ".dbf", ".prj"):
            part = shp.with_suffix(ext)
            if part.exists():
                archive.write(part, part.name)
    return buffer.getvalue()


def reference(path: Path, srid: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """GDAL's read of a file (pyogrio, WKB): geometries in CRS84 and the attribute rows."""
    meta, _, wkb, columns = pyogrio.raw.read(path)
    geoms = shapely.from_wkb(wkb)
    if srid != 4326:
        to84 = Transformer.from_crs(srid, 4326, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(to84.transform(xy[:, 0], xy[:, 1])))
    names = list(meta["fields"])
    rows = [{n: (c[i].item() if hasattr(c[i], "item") else c[i]) for n, c in zip(names, columns, strict=True)}
            for i in range(len(geoms))]
    return geoms, rows


@pytest.fixture
def acme(fast_passwords: None) -> dict[str, Any]:  # noqa: F811  (the imported fixture)
    editor = member("acme", "alice")
    return {"tenant_id": editor.tenant_id, "headers": {"X-API-Key": key_of(editor)}, "membership": editor}


def ingest(acme: dict[str, Any], collection_id: str, relative: str, *, storage: str = "hosted",
           data: bytes | None = None, filename: str | None = None) -> Layer:
    if data is None:
        path = dataset_file(relative)
        data = shapefile_zip(relative) if path.suffix == ".shp" else path.read_bytes()
        filename = filename or (path.stem + (".zip" if path.suffix == ".shp" else path.suffix))
    return layer_ingest(tenant_id=acme["tenant_id"], collection_id=collection_id, title=f"{collection_id} title",
                        data=data, filename=filename or relative, storage=storage)


def get(client: Client, acme: dict[str, Any], path: str, **headers: str) -> Any:
    url = path if path.startswith("http") else API + path.lstrip("/")
    return client.get(url, headers={**acme["headers"], **headers})


def ok(response: Any, content_type: str = "application/json") -> Any:
    assert response.status_code == 200, (response.status_code, response.content[:400])
    assert response["Content-Type"].split(";")[0] == content_type, response["Content-Type"]
    return response.json()


def ogc_error(response: Any, status: int, text: str = "") -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:400])
    doc = response.json()
    assert doc["status"] == status and doc["type"].startswith(EXC), doc
    assert text.lower() in doc["detail"].lower(), doc
    return doc


# --- required members (OGC API - Features 1.0 schemas, checked by hand) ------------------------


def assert_link(link: dict[str, Any]) -> None:
    assert isinstance(link["href"], str) and link["href"].startswith("http"), link
    assert isinstance(link.get("rel"), str), link


def assert_collection(doc: dict[str, Any]) -> None:
    """collection.yaml: id and links required; extent.spatial.bbox a list of 4-number boxes."""
    assert isinstance(doc["id"], str) and isinstance(doc["links"], list), doc
    for link in doc["links"]:
        assert_link(link)
    rels = {link["rel"]: link for link in doc["links"]}
    assert rels["items"]["type"] == GEOJSON and rels["self"]["type"] == "application/json"
    assert doc["itemType"] == "feature" and doc["crs"][0] == translate.CRS84
    if "extent" in doc:
        assert doc["extent"]["spatial"]["crs"] == translate.CRS84
        assert all(len(box) == 4 and all(isinstance(v, float | int) for v in box)
                   for box in doc["extent"]["spatial"]["bbox"])


def assert_feature(doc: dict[str, Any]) -> None:
    """featureGeoJSON.yaml: type Feature, geometry and properties present, id string or integer."""
    assert doc["type"] == "Feature" and "geometry" in doc and isinstance(doc["properties"], dict), doc
    assert isinstance(doc["id"], str | int) and not isinstance(doc["id"], bool)
    assert doc["geometry"]["type"] in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                                       "MultiPolygon", "GeometryCollection")


def assert_items(doc: dict[str, Any]) -> None:
    """featureCollectionGeoJSON.yaml plus the core's paging members."""
    assert doc["type"] == "FeatureCollection" and isinstance(doc["features"], list)
    assert isinstance(doc["numberMatched"], int) and doc["numberMatched"] >= 0
    assert doc["numberReturned"] == len(doc["features"])
    datetime.fromisoformat(doc["timeStamp"].replace("Z", "+00:00"))
    for link in doc["links"]:
        assert_link(link)
        assert link["type"] in (GEOJSON, "application/json")
    for feature in doc["features"]:
        assert_feature(feature)


# --- landing page, conformance, API definition --------------------------------------------------


def test_landing_page_links_the_data_and_conformance_names_features(client, acme):
    landing = ok(get(client, acme, ""))
    data = next(link for link in landing["links"] if link["rel"] == "data")
    assert data["href"] == "http://testserver/ogcapi/collections" and data["type"] == "application/json"
    classes = ok(get(client, acme, "conformance"))["conformsTo"]
    base = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
    assert {base + "core", base + "geojson", base + "oas30"} <= set(classes)
    assert base + "html" not in classes  # JSON only: f=html is refused


def test_openapi_describes_the_features_and_upload_paths(client, acme):
    import openapi_spec_validator

    doc = ok(get(client, acme, "api", Accept="application/json"))
    openapi_spec_validator.validate(doc)
    for path, method in (("/collections", "get"), ("/collections", "post"), ("/collections/{collectionId}", "get"),
                         ("/collections/{collectionId}/items", "get"),
                         ("/collections/{collectionId}/items/{featureId}", "get"), ("/uploads", "post"),
                         ("/uploads/{uploadId}", "get"), ("/uploads/{uploadId}", "delete")):
        assert method in doc["paths"][path], (path, method)
    items = doc["paths"]["/collections/{collectionId}/items"]["get"]
    names = {doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[-1]]["name"] for p in items["parameters"]}
    assert {"bbox", "bbox-crs", "limit", "offset", "datetime", "filter", "filter-lang"} <= names
    assert GEOJSON in doc["components"]["responses"]["Features"]["content"]


# --- collections ------------------------------------------------------------------------------


def test_collections_list_and_describe_the_tenants_layers(client, acme):
    ingest(acme, "soho_deaths", "snow_maps/SohoPeople.shp")
    ingest(acme, "columbus", "columbus/columbus.json", storage="file")
    other = member("globex", "bob")
    layer_ingest(tenant_id=other.tenant_id, collection_id="globex_only", title="secret", storage="hosted",
                 data=dataset_file("columbus/columbus.json").read_bytes(), filename="columbus.json")

    doc = ok(get(client, acme, "collections"))
    assert [link["rel"] for link in doc["links"]] == ["self"]
    by_id = {c["id"]: c for c in doc["collections"]}
    assert set(by_id) == {"soho_deaths", "columbus"}  # not globex's layer
    for c in by_id.values():
        assert_collection(c)

    # The extent, compared with GDAL's read of the file reprojected with pyproj.
    geoms, _ = reference(dataset_file("snow_maps/SohoPeople.shp"), 3857)
    soho = ok(get(client, acme, "collections/soho_deaths"))
    assert soho == by_id["soho_deaths"]
    assert soho["title"] == "soho_deaths title"
    assert np.allclose(soho["extent"]["spatial"]["bbox"][0], shapely.total_bounds(geoms), atol=1e-7)
    assert soho["honua:featureCount"] == len(geoms) == 324
    assert soho["honua:storageCrs"] == translate.EPSG_URI + "3857"
    items = next(link for link in soho["links"] if link["rel"] == "items")
    assert items["href"] == "http://testserver/ogcapi/collections/soho_deaths/items"

    unknown = ogc_error(get(client, acme, "collections/nope"), 404)
    theirs = ogc_error(get(client, acme, "collections/globex_only"), 404)
    assert theirs["title"] == unknown["title"] and theirs["type"] == unknown["type"]
    assert theirs["detail"].replace("globex_only", "X") == unknown["detail"].replace("nope", "X")
    assert "secret" not in json.dumps(doc)


def test_collections_are_json_only(client, acme):
    ingest(acme, "columbus", "columbus/columbus.json")
    for path in ("collections", "collections/columbus", "collections/columbus/items"):
        doc = ogc_error(get(client, acme, f"{path}?f=html"), 400, "f=json")
        assert "html" in doc["detail"]


# --- items: pages, paging, bbox, limit, filter ------------------------------------------------


def _coords(feature: dict[str, Any]) -> tuple[float, float]:
    x, y = feature["geometry"]["coordinates"][:2]
    return round(x, 7), round(y, 7)


@pytest.mark.parametrize("storage", ["hosted", "file"])
def test_paging_walk_returns_every_feature_exactly_once(client, acme, storage):
    ingest(acme, "soho", "snow_maps/SohoPeople.shp", storage=storage)
    geoms, rows = reference(dataset_file("snow_maps/SohoPeople.shp"), 3857)
    expected = Counter(
        (round(g.x, 7), round(g.y, 7), r["Count"]) for g, r in zip(geoms, rows, strict=True)
    )
    url = "collections/soho/items?limit=50"
    seen_ids: list[Any] = []
    seen: Counter[tuple[float, float, int]] = Counter()
    pages = 0
    previous = None
    while url:
        response = get(client, acme, url)
        doc = ok(response, GEOJSON)
        assert_items(doc)
        pages += 1
        assert doc["numberMatched"] == 324
        links = {link["rel"]: link for link in doc["links"]}
        assert links["self"]["type"] == GEOJSON and links["collection"]["href"].endswith("/collections/soho")
        if previous is not None:
            prev_query = parse_qs(urlsplit(links["prev"]["href"]).query)
            assert prev_query == parse_qs(urlsplit(previous).query)
        for f in doc["features"]:
            seen_ids.append(f["id"])
            x, y = _coords(f)
            seen[(x, y, f["properties"]["Count"])] += 1
        previous = links["self"]["href"]
        url = links["next"]["href"] if "next" in links else None
        if url:
            assert parse_qs(urlsplit(url).query)["limit"] == ["50"]
    assert pages == 7  # 6 x 50 + 24
    assert len(seen_ids) == len(set(seen_ids)) == 324
    # Coordinates within 1e-7 degrees (about 1 cm) of GDAL + pyproj, rounded the same way.
    assert _near(seen, expected)


def _near(seen: Counter, expected: Counter) -> bool:
    """The two multisets match once each coordinate may differ by one unit of the 7th decimal."""
    left = sorted(seen.elements())
    right = sorted(expected.elements())
    if len(left) != len(right):
        return False
    a, b = np.array(left, dtype=float), np.array(right, dtype=float)
    return bool(np.allclose(a, b, atol=2e-7))


def test_one_page_default_limit_properties_and_headers(client, acme):
    ingest(acme, "columbus", "columbus/columbus.json")
    geoms, rows = reference(dataset_file("columbus/columbus.json"), 4326)
    response = get(client, acme, "collections/columbus/items")
    doc = ok(response, GEOJSON)
    assert_items(doc)
    assert doc["numberMatched"] == 49 and doc["numberReturned"] == 10  # the default limit
    assert "Link" in response and 'rel=next' in response["Link"]
    by_polyid = {r["POLYID"]: (g, r) for g, r in zip(geoms, rows, strict=True)}
    for feature in doc["features"]:
        geom, row = by_polyid[feature["properties"]["POLYID"]]
        assert feature["properties"]["NEIG"] == row["NEIG"]
        assert feature["properties"]["HOVAL"] == pytest.approx(row["HOVAL"])
        served = shapely.geometry.shape(feature["geometry"])
        assert served.equals_exact(shapely.force_2d(geom).normalize(), 1e-9) or served.normalize().equals_exact(
            shapely.force_2d(geom).normalize(), 1e-9
        )
    links = {link["rel"]: link["href"] for link in doc["links"]}
    assert "prev" not in links
    assert parse_qs(urlsplit(links["next"]).query) == {"limit": ["10"], "offset": ["10"]}
    last = ok(get(client, acme, "collections/columbus/items?offset=40&limit=10"), GEOJSON)
    assert last["numberReturned"] == 9 and not any(link["rel"] == "next" for link in last["links"])
    past = ok(get(client, acme, "collections/columbus/items?offset=100"), GEOJSON)
    assert past["numberReturned"] == 0 and past["numberMatched"] == 49


@pytest.mark.parametrize("storage", ["hosted", "file"])
def test_bbox_matches_shapely_intersects(client, acme, storage):
    ingest(acme, "columbus", "columbus/columbus.json", storage=storage)
    geoms, rows = reference(dataset_file("columbus/columbus.json"), 4326)
    for box in ((7.0, 11.5, 8.5, 13.0), (9.9, 12.1, 10.05, 12.2), (0.0, 0.0, 1.0, 1.0)):
        want = {rows[i]["POLYID"] for i in np.flatnonzero(shapely.intersects(geoms, shapely.box(*box)))}
        query = "bbox=" + ",".join(map(str, box)) + "&limit=1000"
        doc = ok(get(client, acme, f"collections/columbus/items?{query}"), GEOJSON)
        assert {f["properties"]["POLYID"] for f in doc["features"]} == want, box
        assert doc["numberMatched"] == len(want)
        self_link = next(link["href"] for link in doc["links"] if link["rel"] == "self")
        assert parse_qs(urlsplit(self_link).query)["bbox"] == [",".join(map(str, box))]
    # The same box as EPSG:4326 (latitude first) selects the same features.
    box = (7.0, 11.5, 8.5, 13.0)
    lat_first = f"{box[1]},{box[0]},{box[3]},{box[2]}"
    crs = "http://www.opengis.net/def/crs/EPSG/0/4326"
    a = ok(get(client, acme, f"collections/columbus/items?bbox={lat_first}&bbox-crs={crs}&limit=100"), GEOJSON)
    b = ok(get(client, acme, "collections/columbus/items?bbox=7.0,11.5,8.5,13.0&limit=100"), GEOJSON)
    assert {f["id"] for f in a["features"]} == {f["id"] for f in b["features"]} and a["numberMatched"] > 0


def test_bbox_in_the_layers_own_crs(client, acme):
    ingest(acme, "tokyo", "tokyo/tokyomet262.shp")
    meta, _, wkb, columns = pyogrio.raw.read(dataset_file("tokyo/tokyomet262.shp"))
    native = shapely.from_wkb(wkb)
    area_ids = columns[list(meta["fields"]).index("AreaID")]
    box = (330000.0, -40000.0, 360000.0, -10000.0)
    want = {int(area_ids[i]) for i in np.flatnonzero(shapely.intersects(native, shapely.box(*box)))}
    crs = translate.EPSG_URI + "30166"
    doc = ok(get(client, acme, f"collections/tokyo/items?bbox={','.join(map(str, box))}&bbox-crs={crs}&limit=500"),
             GEOJSON)
    assert {f["properties"]["AreaID"] for f in doc["features"]} == want and len(want) > 3
    # Served in CRS84: the polygons reprojected with pyproj agree with the served ones.
    to84 = Transformer.from_crs(30166, 4326, always_xy=True)
    by_id = {int(a): g for a, g in zip(area_ids, native, strict=True)}
    for feature in doc["features"][:20]:
        served = shapely.geometry.shape(feature["geometry"])
        ours = shapely.transform(by_id[feature["properties"]["AreaID"]],
                                 lambda xy: np.column_stack(to84.transform(xy[:, 0], xy[:, 1])))
        assert served.symmetric_difference(ours).area < 1e-9 * max(ours.area, 1e-12) + 1e-12


def test_bad_items_parameters_are_400(client, acme):
    ingest(acme, "columbus", "columbus/columbus.json")
    items = "collections/columbus/items"
    for query, text in (
        ("limit=0", "limit"), ("limit=10001", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset"),
        ("bbox=1,2,3", "bbox"), ("bbox=a,b,c,d", "bbox"), ("bbox=1,50,2,40", "bbox"), ("bbox=10,0,5,1", "bbox"),
        ("bbox-crs=" + translate.CRS84, "bbox-crs"), ("bbox=1,2,3,4&bbox-crs=urn:nope", "bbox-crs"),
        ("datetime=yesterday", "datetime"), ("filter-lang=sql", "filter-lang"), ("filter-lang=cql2-json", "filter-lang"), ("colour=blue", "colour"),
        ("filter=NEIG%20%3C%3C%203", "filter"), ("filter=nosuchfield%20%3D%201", "nosuchfield"),
    ):
        ogc_error(get(client, acme, f"{items}?{query}"), 400, text)
    # the largest limit and a datetime are accepted
    assert ok(get(client, acme, f"{items}?limit=10000&datetime=2020-01-01T00:00:00Z/.."), GEOJSON)["numberReturned"] == 49


@pytest.mark.parametrize("storage", ["hosted", "file"])
def test_cql2_filter_matches_numpy(client, acme, storage):
    ingest(acme, "columbus", "columbus/columbus.json", storage=storage)
    _, rows = reference(dataset_file("columbus/columbus.json"), 4326)
    hoval = np.array([r["HOVAL"] for r in rows])
    neig = np.array([r["NEIG"] for r in rows])
    polyid = np.array([r["POLYID"] for r in rows])
    for text, mask in (
        ("HOVAL > 40", hoval > 40),
        ("HOVAL > 30 AND NEIG < 20", (hoval > 30) & (neig < 20)),
        ("NEIG IN (1, 5, 9) OR HOVAL BETWEEN 20 AND 25", np.isin(neig, [1, 5, 9]) | ((hoval >= 20) & (hoval <= 25))),
    ):
        doc = ok(client.get(API + "collections/columbus/items",
                            {"filter": text, "filter-lang": "cql2-text", "limit": "100"},
                            headers=acme["headers"]), GEOJSON)
        assert {f["properties"]["POLYID"] for f in doc["features"]} == set(polyid[mask].tolist()), text
        assert doc["numberMatched"] == int(mask.sum())
        # the paging links keep the filter
        self_link = next(link["href"] for link in doc["links"] if link["rel"] == "self")
        assert parse_qs(urlsplit(self_link).query)["filter"] == [text]


def test_one_feature_by_id(client, acme):
    ingest(acme, "columbus", "columbus/columbus.json")
    page = ok(get(client, acme, "collections/columbus/items?limit=3&offset=5"), GEOJSON)
    for listed in page["features"]:
        response = get(client, acme, f"collections/columbus/items/{listed['id']}")
        one = ok(response, GEOJSON)
        assert_feature(one)
        assert one["id"] == listed["id"] and one["properties"] == listed["properties"]
        assert one["geometry"] == listed["geometry"]
        rels = {link["rel"]: link for link in one["links"]}
        assert rels["self"]["href"] == f"http://testserver/ogcapi/collections/columbus/items/{listed['id']}"
        assert rels["collection"]["href"] == "http://testserver/ogcapi/collections/columbus"
    ogc_error(get(client, acme, "collections/columbus/items/999999"), 404)
    ogc_error(get(client, acme, "collections/columbus/items/not-a-number"), 404)
    ogc_error(get(client, acme, "collections/nope/items/1"), 404)


# --- uploads (OGC) ------------------------------------------------------------------------------


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def upload_raw(client: Client, acme: dict[str, Any], data: bytes, *, name: str | None = "blob.png",
               disposition: str | None = None, content_type: str = "application/octet-stream") -> Any:
    query = f"?filename={name}" if name else ""
    headers = dict(acme["headers"])
    if disposition:
        headers["Content-Disposition"] = disposition
    return client.post(API + "uploads" + query, data, content_type=content_type, headers=headers)


def test_upload_raw_multipart_get_delete(client, acme):
    response = upload_raw(client, acme, PNG)
    assert response.status_code == 201, response.content
    doc = response.json()
    assert set(doc) >= {"id", "name", "size", "mediaType", "links"}
    assert doc["name"] == "blob.png" and doc["size"] == len(PNG) and doc["mediaType"] == "image/png"
    href = f"http://testserver/ogcapi/uploads/{doc['id']}"
    assert response["Location"] == href and doc["links"][0] == {
        "href": href, "rel": "self", "type": "application/json", "title": "this upload"}
    assert ok(get(client, acme, href)) == doc

    named = upload_raw(client, acme, dataset_file("columbus/columbus.json").read_bytes(), name=None,
                       disposition='attachment; filename="columbus.geojson"', content_type="application/geo+json")
    assert named.status_code == 201 and named.json()["name"] == "columbus.geojson"
    assert named.json()["mediaType"] == "application/geo+json"

    multi = client.post(API + "uploads", {"file": SimpleUploadedFile("pic.png", PNG), "description": "a picture"},
                        headers=acme["headers"])
    assert multi.status_code == 201, multi.content
    assert multi.json()["name"] == "pic.png" and multi.json()["description"] == "a picture"

    gone = client.delete(href, headers=acme["headers"])
    assert gone.status_code == 204
    ogc_error(get(client, acme, href), 404)
    ogc_error(client.delete(href, headers=acme["headers"]), 404)


def test_upload_refusals_in_the_ogc_format(client, acme, settings):
    ogc_error(upload_raw(client, acme, PNG, name=None), 400, "file name")
    ogc_error(upload_raw(client, acme, b""), 400, "empty")
    ogc_error(client.post(API + "uploads", {"other": "x"}, headers=acme["headers"]), 400, "'file'")
    # typed by content: an executable (or bytes of no known type) is refused, whatever its name
    ogc_error(upload_raw(client, acme, b"MZ\x90\x00\x03" + b"\x00" * 60, name="map.png"), 415)
    ogc_error(upload_raw(client, acme, bytes(range(256)) * 4, name="data.gpkg"), 415, "accepted file types")
    settings.HONUA = {**settings.HONUA, "UPLOAD_MAX_BYTES": 200}
    ogc_error(upload_raw(client, acme, PNG), 413)
    ogc_error(client.post(API + "uploads", {"file": SimpleUploadedFile("pic.png", PNG)}, headers=acme["headers"]),
              413)


@pytest.mark.django_db(transaction=True)  # the sync run reads the upload on its own connection
def test_an_ogc_upload_is_a_file_input_of_an_execute(client, acme):
    item = upload_raw(client, acme, PNG).json()
    href = item["links"][0]["href"]
    body = {"inputs": {"string_input": "with a file", "binary_input": {"href": href}},
            "outputs": {"binary_input": {}}}
    response = client.post(API + "processes/echo/execution", json.dumps(body), content_type="application/json",
                           headers=acme["headers"])
    assert response.status_code == 200, response.content[:300]
    assert response.content == PNG
    # another server's URL stays an outbound reference (and loopback is refused by the SSRF guard)
    body["inputs"]["binary_input"] = {"href": "http://127.0.0.1/ogcapi/uploads/" + item["id"]}
    ogc_error(client.post(API + "processes/echo/execution", json.dumps(body), content_type="application/json",
                          headers=acme["headers"]), 400)
    # an unknown upload of this server: 404 like any unknown item
    body["inputs"]["binary_input"] = {"href": "http://testserver/ogcapi/uploads/i" + "0" * 32}
    ogc_error(client.post(API + "processes/echo/execution", json.dumps(body), content_type="application/json",
                          headers=acme["headers"]), 404)


def test_upload_then_ingest_then_items(client, acme):
    zipped = shapefile_zip("snow_maps/SohoWater.shp")
    item = upload_raw(client, acme, zipped, name="pumps.zip").json()
    body = {"id": "pumps", "title": "Soho pumps", "description": "John Snow's pumps", "upload": item["id"]}
    response = client.post(API + "collections", json.dumps(body), content_type="application/json",
                           headers=acme["headers"])
    assert response.status_code == 201, response.content[:400]
    assert response["Location"] == "http://testserver/ogcapi/collections/pumps"
    created = response.json()
    assert_collection(created)
    assert created["title"] == "Soho pumps" and created["description"] == "John Snow's pumps"
    assert ok(get(client, acme, "collections/pumps")) == created
    assert "pumps" in {c["id"] for c in ok(get(client, acme, "collections"))["collections"]}
    geoms, _ = reference(dataset_file("snow_maps/SohoWater.shp"), 3857)
    doc = ok(get(client, acme, "collections/pumps/items?limit=100"), GEOJSON)
    assert doc["numberMatched"] == len(geoms) == 13
    served = sorted(_coords(f) for f in doc["features"])
    assert np.allclose(served, sorted((g.x, g.y) for g in geoms), atol=2e-7)

    # by this server's upload URL, as a file layer
    again = dict(body, id="pumps_file", upload=item["links"][0]["href"], storage="file")
    response = client.post(API + "collections", json.dumps(again), content_type="application/json",
                           headers=acme["headers"])
    assert response.status_code == 201, response.content[:400]
    assert ok(get(client, acme, "collections/pumps_file/items"), GEOJSON)["numberMatched"] == 13

    # mistakes: each a 400 (or 404 for an unknown upload), and no layer left behind
    for bad, status in (
        ({"title": "x", "upload": item["id"]}, 400),
        ({"id": "9bad", "upload": item["id"]}, 400),
        ({"id": "ok", "upload": item["id"], "storage": "cloud"}, 400),
        ({"id": "ok", "upload": item["id"], "srid": "4326"}, 400),
        ({"id": "ok", "upload": item["id"], "colour": "red"}, 400),
        ({"id": "ok", "upload": "http://elsewhere.example/ogcapi/uploads/" + item["id"]}, 400),
        ({"id": "ok", "upload": "i" + "0" * 32}, 404),
        ({"id": "pumps", "upload": item["id"]}, None),  # the id is taken
    ):
        response = client.post(API + "collections", json.dumps(bad), content_type="application/json",
                               headers=acme["headers"])
        if status is None:
            assert response.status_code in (400, 409), response.content
            ogc_error(response, response.status_code)
        else:
            ogc_error(response, status)
    assert set(Layer.objects.filter(tenant_id=acme["tenant_id"]).values_list("collection_id", flat=True)) == {
        "pumps", "pumps_file"}


def test_viewers_may_read_but_not_ingest(client, acme):
    viewer = member("acme", "victor", role="viewer")
    headers = {"X-API-Key": key_of(viewer)}
    ingest(acme, "columbus", "columbus/columbus.json")
    assert client.get(API + "collections/columbus/items", headers=headers).status_code == 200
    item = client.post(API + "uploads?filename=c.geojson", dataset_file("columbus/columbus.json").read_bytes(),
                       content_type="application/geo+json", headers=headers).json()
    body = {"id": "mine", "upload": item["id"]}
    ogc_error(client.post(API + "collections", json.dumps(body), content_type="application/json",
                          headers=headers), 403)
    gp = client.post(f"{ANALYSIS}/uploads/{item['id']}/ingest", {"collectionId": "mine", "f": "json"},
                     headers=headers)
    assert gp.status_code == 200
    # A viewer runs no task of the service: the service itself is hidden from them...
    assert_error(gp.json(), 404)
    # ...and once viewers may run its tasks, ingest is still refused (403 in Esri's envelope).
    rule("acme", "*", "viewer", True)
    gp = client.post(f"{ANALYSIS}/uploads/{item['id']}/ingest", {"collectionId": "mine", "f": "json"},
                     headers=headers)
    assert_error(gp.json(), 403, "editors")
    assert not Layer.objects.filter(collection_id="mine").exists()


# --- GPServer upload -> ingest ---------------------------------------------------------------


def test_gpserver_upload_then_ingest(client, acme):
    uploaded = client.post(f"{ANALYSIS}/uploads/upload",
                           {"f": "json", "file": SimpleUploadedFile("columbus.geojson",
                                                                    dataset_file("columbus/columbus.json").read_bytes())},
                           headers=acme["headers"]).json()
    item_id = uploaded["item"]["itemID"]
    answer = client.post(f"{ANALYSIS}/uploads/{item_id}/ingest",
                         {"f": "json", "collectionId": "columbus_gp", "title": "Columbus"},
                         headers=acme["headers"]).json()
    assert answer["success"] is True, answer
    layer = answer["layer"]
    assert layer["url"] == "http://testserver/ogcapi/collections/columbus_gp"
    assert layer["geometryType"] == "esriGeometryPolygon" and layer["featureCount"] == 49
    assert layer["spatialReference"]["wkid"] == 4326
    assert {"name": "HOVAL", "type": "esriFieldTypeDouble"} in layer["fields"]
    geoms, _ = reference(dataset_file("columbus/columbus.json"), 4326)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    assert layer["extent"]["xmin"] == pytest.approx(xmin) and layer["extent"]["ymax"] == pytest.approx(ymax)
    doc = ok(client.get(layer["itemsUrl"] + "?limit=100", headers=acme["headers"]), GEOJSON)
    assert doc["numberMatched"] == 49
    # errors in Esri's envelope
    assert_error(client.post(f"{ANALYSIS}/uploads/{item_id}/ingest", {"f": "json"}, headers=acme["headers"]).json(),
                 400, "collectionId")
    assert_error(client.post(f"{ANALYSIS}/uploads/{item_id}/ingest",
                             {"f": "json", "collectionId": "columbus_gp"}, headers=acme["headers"]).json())
    assert_error(client.post(f"{ANALYSIS}/uploads/i{'0' * 32}/ingest",
                             {"f": "json", "collectionId": "x1"}, headers=acme["headers"]).json(), 404)
    assert_error(client.post(f"{ANALYSIS}/uploads/{item_id}/ingest",
                             {"f": "json", "collectionId": "x2", "storage": "cloud"}, headers=acme["headers"]).json(),
                 400, "storage")


def test_gpserver_upload_refusals(client, acme, settings):
    typeless = client.post(f"{ANALYSIS}/uploads/upload",
                           {"f": "json", "file": SimpleUploadedFile("a.gpkg", bytes(range(256)) * 4)},
                           headers=acme["headers"]).json()
    assert_error(typeless, 415)
    settings.HONUA = {**settings.HONUA, "UPLOAD_MAX_BYTES": 200}
    big = client.post(f"{ANALYSIS}/uploads/upload", {"f": "json", "file": SimpleUploadedFile("a.png", PNG)},
                      headers=acme["headers"]).json()
    assert_error(big, 413)



# --- OWSLib (a real OGC API - Features client) against a live server ----------------------------


@pytest.fixture
def owslib_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """OWSLib's API client updates its module-level REQUEST_HEADERS with the headers it is
    given (owslib 0.35): a copy for this test keeps our API key out of later clients."""
    import owslib.ogcapi

    monkeypatch.setattr(owslib.ogcapi, "REQUEST_HEADERS", dict(owslib.ogcapi.REQUEST_HEADERS))


@pytest.mark.interop
@pytest.mark.django_db(transaction=True)
def test_owslib_lists_collections_and_reads_items(live_server, acme, owslib_headers):
    from owslib.ogcapi.features import Features

    ingest(acme, "columbus", "columbus/columbus.json")
    ingest(acme, "soho", "snow_maps/SohoPeople.shp", storage="file")
    client = Features(live_server.url + API, headers=acme["headers"], timeout=30)
    assert FEATURES_CORE in client.conformance()["conformsTo"]
    assert sorted(client.feature_collections()) == ["columbus", "soho"]
    described = client.collection("columbus")
    assert described["itemType"] == "feature" and described["title"] == "columbus title"

    geoms, rows = reference(dataset_file("columbus/columbus.json"), 4326)
    box = (7.0, 11.5, 8.5, 13.0)
    want = {rows[i]["POLYID"] for i in np.flatnonzero(shapely.intersects(geoms, shapely.box(*box)))}
    page = client.collection_items("columbus", bbox=list(box), limit=100)
    assert {f["properties"]["POLYID"] for f in page["features"]} == want
    assert page["numberMatched"] == len(want)
    filtered = client.collection_items("columbus", filter="HOVAL > 40", limit=100)
    assert filtered["numberMatched"] == sum(r["HOVAL"] > 40 for r in rows)

    first = client.collection_items("soho", limit=5, offset=10)
    assert first["numberReturned"] == 5 and first["numberMatched"] == 324
    one = client.collection_item("soho", str(first["features"][0]["id"]))
    assert one["geometry"] == first["features"][0]["geometry"]
