"""Catalog layers as inputs (OGC layerReference, GPServer layer URL) and results as layers
(OGC registerAs, GPServer esri_out_feature_service_name), with data locality in tier choice.

Every expectation is computed here with shapely over the data the test inserted, never from
the process's own output.
"""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta
from typing import Any

import pytest
import shapely
from django.conf import settings
from django.test import Client
from django.utils import timezone
from shapely.geometry import Point, box, shape

from controlplane.contracts import (
    ExecutionMode,
    ExecutionRequest,
    OutputRequest,
    Principal,
    Surface,
)
from controlplane.exceptions import DataNotInDatabase, InvalidParameterValue, PermissionDenied
from controlplane.models import Layer, ProcessRun, Tenant, TenantPolicyOverride
from controlplane.selectors import layer_for_principal
from controlplane.services.execution import run_submit
from controlplane.services.layers import layer_ingest, layer_publish, layers_expire
from controlplane.services.policy import policy_cache_clear
from tests.controlplane.test_workers import qcluster  # noqa: F401
from tests.gpserver.support import GEOMETRY, GPClient, assert_error
from tests.identity import fast_passwords, key_of, member, principal_of, rule  # noqa: F401

pytestmark = pytest.mark.django_db
API = "/ogcapi/"
N = 240
BBOX = [-122.5, 37.7, -122.3, 37.8]
FILTER = "kind = 'a' AND v >= 20"


def _points(seed: int = 5) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    return [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [rnd.uniform(-122.6, -122.2), rnd.uniform(37.6, 37.9)]},
            "properties": {"kind": "a" if i % 3 else "b", "v": i},
        }
        for i in range(N)
    ]


POINTS = _points()


def _selected(bbox: list[float] | None = BBOX, kind: str | None = "a", v_min: int = 20) -> list[dict[str, Any]]:
    """The features a bbox + filter selects, computed independently (shapely, plain Python)."""
    region = box(*bbox) if bbox else None
    out = []
    for f in POINTS:
        p = f["properties"]
        if region is not None and not region.intersects(shape(f["geometry"])):
            continue
        if kind is not None and (p["kind"] != kind or p["v"] < v_min):
            continue
        out.append(f)
    return out


def _tenant(slug: str | None = None) -> Tenant:
    return Tenant.objects.get(slug=slug or settings.HONUA["DEFAULT_TENANT"])


@pytest.fixture
def editor(honua_catalog, fast_passwords) -> Any:  # noqa: F811
    return member(settings.HONUA["DEFAULT_TENANT"], "layer-editor", "editor")


@pytest.fixture
def http(editor) -> Client:
    return Client(headers={"X-API-Key": key_of(editor)})


@pytest.fixture
def pts(honua_catalog) -> Layer:
    return layer_publish(
        tenant_id=_tenant().pk, collection_id="pts", title="points",
        features={"type": "FeatureCollection", "srid": 4326, "features": POINTS},
    )


def _pin(process_id: str, tiers: list[str], slug: str | None = None) -> None:
    TenantPolicyOverride.objects.update_or_create(
        tenant=_tenant(slug), process_id=process_id, defaults={"tier_order": tiers}
    )
    policy_cache_clear()


def _execute(http: Client, process: str, body: dict[str, Any], **headers: str) -> Any:
    return http.post(
        f"{API}processes/{process}/execution", data=json.dumps(body), content_type="application/json",
        headers={"Accept": "application/json", **headers},
    )


def _run_of(response: Any) -> ProcessRun:
    monitor = next(
        part for part in response["Link"].split(",") if 'rel="monitor"' in part or "rel=monitor" in part
    )
    job = monitor.split(">")[0].rsplit("/", 1)[-1]
    return ProcessRun.objects.get(id=job)


def _buffer_body(features: Any, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": {"features": features, "distance": {"value": 100, "unit": "meter"}},
        "response": "document",
        **extra,
    }


def _by_v(doc: dict[str, Any]) -> dict[int, Any]:
    return {f["properties"]["v"]: shape(f["geometry"]) for f in doc["features"]}


REF = {"layerReference": {"collectionId": "pts", "bbox": BBOX, "filter": FILTER}}


def test_ogc_layer_reference_matches_inline_on_both_tiers(http, pts):
    want = _selected()
    assert 10 < len(want) < N  # the bbox and the filter each leave features out
    inline = _execute(http, "buffer", _buffer_body({"value": {"type": "FeatureCollection", "features": want}}))
    assert inline.status_code == 200, inline.content
    expected = _by_v(inline.json()["result"]["value"])

    on_postgis = _execute(http, "buffer", _buffer_body(REF))
    assert on_postgis.status_code == 200, on_postgis.content
    assert _run_of(on_postgis).tier_used == "postgis"  # the layer is in this database
    _pin("buffer", ["inprocess"])
    on_inprocess = _execute(http, "buffer", _buffer_body(REF))
    assert on_inprocess.status_code == 200, on_inprocess.content
    run = _run_of(on_inprocess)
    assert run.tier_used == "inprocess" and run.feature_count == len(want)

    for response in (on_postgis, on_inprocess):
        got = _by_v(response.json()["result"]["value"])
        assert set(got) == {f["properties"]["v"] for f in want}
        for f in want:
            v = f["properties"]["v"]
            assert got[v].contains(shape(f["geometry"]))
            # Same 100 m on the ground whichever tier computed it (the tiers' frames differ a little).
            assert got[v].symmetric_difference(expected[v]).area / expected[v].area < 0.02
        kinds = {f["properties"]["v"]: f["properties"]["kind"] for f in response.json()["result"]["value"]["features"]}
        assert set(kinds.values()) == {"a"}  # attributes kept


def test_dbscan_over_a_layer_on_postgis_keeps_attributes(http, pts):
    response = _execute(http, "dbscan", {
        "inputs": {"features": {"layerReference": {"collectionId": "pts"}}, "eps": {"value": 3000, "unit": "meter"},
                   "min_points": 4},
        "response": "document",
    })
    assert response.status_code == 200, response.content
    assert _run_of(response).tier_used == "postgis"
    out = response.json()["result"]["value"]["features"]
    assert sorted(f["properties"]["v"] for f in out) == list(range(N))
    # Independent check: scikit-learn's DBSCAN on the same points (haversine, metres).
    import numpy as np
    from sklearn.cluster import DBSCAN

    coords = np.radians([[f["geometry"]["coordinates"][1], f["geometry"]["coordinates"][0]] for f in POINTS])
    labels = DBSCAN(eps=3000 / 6371008.8, min_samples=4, metric="haversine").fit(coords).labels_
    got = {f["properties"]["v"]: f["properties"]["cluster_id"] for f in out}
    assert {v for v in got if got[v] == -1} == {i for i in range(N) if labels[i] == -1}
    pairs = {(labels[i], got[i]) for i in range(N) if labels[i] != -1}
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})  # same partition


def test_buffer_and_dissolve_over_a_layer_on_postgis(http, pts):
    body = _buffer_body({"layerReference": {"collectionId": "pts", "filter": "v < 40"}})
    body["inputs"]["dissolve"] = True
    response = _execute(http, "buffer", body)
    assert response.status_code == 200, response.content
    assert _run_of(response).tier_used == "postgis"
    merged = shapely.union_all([shape(f["geometry"]) for f in response.json()["result"]["value"]["features"]])
    points = [shape(f["geometry"]) for f in POINTS if f["properties"]["v"] < 40]
    assert all(merged.contains(p) for p in points)
    assert not merged.contains(Point(-122.0, 37.0))


def test_own_href_is_a_layer_reference(http, pts):
    href = f"http://testserver{API}collections/pts/items?bbox={','.join(map(str, BBOX))}"
    response = _execute(http, "buffer", _buffer_body({"href": href}))
    assert response.status_code == 200, response.content
    assert len(response.json()["result"]["value"]["features"]) == len(_selected(kind=None))


def test_gpserver_layer_url_with_where(http, pts):
    gp = GPClient(http)
    doc = gp.post(
        f"{GEOMETRY}/buffer/execute",
        features={"url": "http://testserver/ogcapi/collections/pts", "filter": "v < 30 AND kind = 'b'"},
        distance={"distance": 100, "units": "esriMeters"},
    )
    assert "error" not in doc, doc
    result = next(r for r in doc["results"] if r["dataType"] == "GPFeatureRecordSetLayer")
    got = sorted(f["attributes"]["v"] for f in result["value"]["features"])
    assert got == [i for i in range(30) if i % 3 == 0]


def test_other_tenants_layer_is_unknown(http, pts, fast_passwords):  # noqa: F811
    other = member("layers-other", "other-editor", "editor")
    layer_publish(tenant_id=other.tenant_id, collection_id="secret", title="secret",
                  features={"type": "FeatureCollection", "srid": 4326, "features": POINTS[:3]})
    theirs = _execute(http, "buffer", _buffer_body({"layerReference": {"collectionId": "secret"}}))
    unknown = _execute(http, "buffer", _buffer_body({"layerReference": {"collectionId": "nosuch"}}))
    assert theirs.status_code == unknown.status_code == 400
    assert theirs.json()["detail"] == unknown.json()["detail"].replace("nosuch", "secret")
    assert "input 'features'" in theirs.json()["detail"]
    gp = GPClient(http)
    doc = gp.post(f"{GEOMETRY}/buffer/execute", features={"url": "http://testserver/ogcapi/collections/secret"},
                  distance={"distance": 1, "units": "esriMeters"})
    assert_error(doc, 400, "no layer 'secret'")


def test_bad_filter_is_a_400_with_its_position(http, pts):
    response = _execute(http, "buffer", _buffer_body({"layerReference": {"collectionId": "pts", "filter": "v >> 3"}}))
    assert response.status_code == 400, response.content
    assert "position" in response.json()["detail"] or "column" in response.json()["detail"]
    doc = GPClient(http).post(
        f"{GEOMETRY}/buffer/execute",
        features={"url": "http://testserver/ogcapi/collections/pts", "filter": "v >> 3"},
        distance={"distance": 1, "units": "esriMeters"},
    )
    assert_error(doc, 400)


def test_forged_source_descriptor_is_refused(http, pts):
    forged = {"value": {"source": {"storage": "postgis", "schema": "public", "table": "auth_user"}, "count": 1}}
    response = _execute(http, "buffer", _buffer_body(forged))
    assert response.status_code == 400
    assert "source" in response.json()["detail"]


def _gpkg(tmp_path: Any, features: list[dict[str, Any]]) -> bytes:
    import numpy as np
    import pyogrio.raw

    path = tmp_path / "filepts.gpkg"
    pyogrio.raw.write(
        str(path), np.array([shapely.to_wkb(shape(f["geometry"])) for f in features], dtype=object),
        [np.array([f["properties"]["kind"] for f in features], dtype=object),
         np.array([f["properties"]["v"] for f in features], dtype=np.int64)],
        ["kind", "v"], driver="GPKG", layer="filepts", geometry_type="Point", crs="EPSG:4326",
    )
    return path.read_bytes()


def test_file_layer_skips_postgis_and_requires_postgres_is_refused(http, honua_catalog, tmp_path):
    layer_ingest(tenant_id=_tenant().pk, collection_id="filepts", title="file points",
                 data=_gpkg(tmp_path, POINTS[:50]), filename="filepts.gpkg", storage="file")
    response = _execute(http, "buffer", _buffer_body({"layerReference": {"collectionId": "filepts"}}))
    assert response.status_code == 200, response.content
    run = _run_of(response)
    assert run.tier_used == "inprocess"
    skipped = [t for t in run.tiers_tried if t["outcome"] == "skipped"]
    assert skipped and skipped[0]["tier"] == "postgis"
    assert "layer 'filepts'" in skipped[0]["reason"] and "filepts.gpkg" in skipped[0]["reason"]
    assert "not in this database" in skipped[0]["reason"]
    assert len(response.json()["result"]["value"]["features"]) == 50

    _pin("dbscan", ["postgis"])  # the process can only run in the database
    refused = _execute(http, "dbscan", {"inputs": {"features": {"layerReference": {"collectionId": "filepts"}}}})
    assert refused.status_code == DataNotInDatabase.status == 400
    assert "layer 'filepts'" in refused.json()["detail"] and "filepts.gpkg" in refused.json()["detail"]


def _status(http: Client, run: ProcessRun) -> dict[str, Any]:
    return http.get(f"{API}jobs/{run.id}", headers={"Accept": "application/json"}).json()


def test_register_as_publishes_a_layer_usable_as_input(http, editor, pts):
    body = _buffer_body(REF, outputs={"result": {"registerAs": {"collectionId": "pts_buf", "title": "Buffers",
                                                                 "ttl": 3600}}})
    response = _execute(http, "buffer", body)
    assert response.status_code == 200, response.content
    run = _run_of(response)
    links = [link for link in _status(http, run)["links"] if link["rel"].endswith("/collection")]
    assert links and links[0]["href"].endswith("/ogcapi/collections/pts_buf")
    assert any("pts_buf" in m["text"] for m in run.messages)
    info = layer_for_principal(principal=principal_of(editor), collection_id="pts_buf")
    assert info.feature_count == len(_selected()) and info.run_id == str(run.id) and info.expires
    # The published layer feeds a second run: its polygons' centroids are the selected points.
    second = _execute(http, "centroid", {"inputs": {"features": {"layerReference": {"collectionId": "pts_buf"}}},
                                          "response": "document"})
    assert second.status_code == 200, second.content
    got = sorted((round(shape(f["geometry"]).x, 4), round(shape(f["geometry"]).y, 4))
                 for f in second.json()["result"]["value"]["features"])
    want = sorted((round(f["geometry"]["coordinates"][0], 4), round(f["geometry"]["coordinates"][1], 4))
                  for f in _selected())
    assert got == want
    # Taken: the same id again is refused before any run exists.
    before = ProcessRun.objects.count()
    again = _execute(http, "buffer", body)
    assert again.status_code == 400 and "already exists" in again.json()["detail"]
    assert ProcessRun.objects.count() == before
    # Expiry removes it.
    Layer.objects.filter(collection_id="pts_buf").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert layers_expire() >= 1
    assert not Layer.objects.filter(collection_id="pts_buf").exists()


def test_register_as_needs_a_writer(pts, fast_passwords):  # noqa: F811
    viewer = member(settings.HONUA["DEFAULT_TENANT"], "layer-viewer", "viewer")
    rule(settings.HONUA["DEFAULT_TENANT"], "buffer", "anonymous", True)
    rule(settings.HONUA["DEFAULT_TENANT"], "buffer", "viewer", True)
    body = _buffer_body(REF, outputs={"result": {"registerAs": {"collectionId": "nope"}}})
    for client in (Client(), Client(headers={"X-API-Key": key_of(viewer)})):
        response = _execute(client, "buffer", body)
        assert response.status_code == 403, response.content
        assert "editor or admin" in response.json()["detail"]
    # Without registerAs the same request runs: the refusal is about publishing.
    assert _execute(Client(), "buffer", _buffer_body(REF)).status_code == 200
    with pytest.raises(PermissionDenied):
        run_submit(ExecutionRequest(
            process_id="buffer", inputs={"features": {"layer": "pts"}, "distance": {"value": 1, "unit": "meter"}},
            principal=Principal(tenant=settings.HONUA["DEFAULT_TENANT"]), surface=Surface.INTERNAL,
            outputs={"result": OutputRequest(register_as={"collection_id": "nope", "title": "x"})},
        ))
    assert not Layer.objects.filter(collection_id="nope").exists()


def test_gpserver_esri_out_feature_service_name_publishes(http, editor, pts):
    doc = GPClient(http).post(
        f"{GEOMETRY}/buffer/execute",
        features={"url": "http://testserver/ogcapi/collections/pts", "filter": "v < 12"},
        distance={"distance": 10, "units": "esriMeters"},
        esri_out_feature_service_name="gp_buffers",
    )
    assert "error" not in doc, doc
    assert any("http://testserver/ogcapi/collections/gp_buffers" in m["description"] for m in doc["messages"])
    info = layer_for_principal(principal=principal_of(editor), collection_id="gp_buffers")
    assert info.feature_count == 12


def test_invalid_register_as_and_reference_shapes(http, pts):
    bad_id = _execute(http, "buffer", _buffer_body(REF, outputs={"result": {"registerAs": {"collectionId": "1x"}}}))
    assert bad_id.status_code == 400
    bad_ttl = _execute(http, "buffer", _buffer_body(
        REF, outputs={"result": {"registerAs": {"collectionId": "ok", "ttl": -3}}}))
    assert bad_ttl.status_code == 400
    bad_ref = _execute(http, "buffer", _buffer_body({"layerReference": {"collectionId": "pts", "bbox": [1, 2]}}))
    assert bad_ref.status_code == 400
    with pytest.raises(InvalidParameterValue):
        run_submit(ExecutionRequest(
            process_id="buffer", inputs={"features": {"layer": "pts", "filter": "nosuchfield = 1"},
                                         "distance": {"value": 1, "unit": "meter"}},
            principal=Principal(tenant=settings.HONUA["DEFAULT_TENANT"]), surface=Surface.INTERNAL,
        ))


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_async_run_with_a_layer_reference_through_a_worker(qcluster, honua_catalog):  # noqa: F811
    layer_publish(tenant_id=_tenant().pk, collection_id="pts", title="points",
                  features={"type": "FeatureCollection", "srid": 4326, "features": POINTS})
    result = run_submit(ExecutionRequest(
        process_id="buffer",
        inputs={"features": {"layer": "pts", "bbox": BBOX, "filter": FILTER, "filter_lang": "cql2-text"},
                "distance": {"value": 100, "unit": "meter"}},
        principal=Principal(tenant=settings.HONUA["DEFAULT_TENANT"], username="tester"),
        surface=Surface.OGC, mode=ExecutionMode.ASYNC,
    ))
    end = time.monotonic() + 60
    run = ProcessRun.objects.get(id=result.run_id)
    while run.status not in ("succeeded", "failed") and time.monotonic() < end:
        time.sleep(0.2)
        run = ProcessRun.objects.get(id=result.run_id)
    assert run.status == "succeeded", (run.status, run.error)
    assert run.tier_used == "postgis"
    assert run.inputs["features"]["count"] == len(_selected())
    got = sorted(f["properties"]["v"] for f in run.outputs["result"]["features"])
    assert got == sorted(f["properties"]["v"] for f in _selected())


def test_rerun_resolves_the_reference_again(http, editor, pts):
    from controlplane.services.rerun import run_rerun

    first = _run_of(_execute(http, "buffer", _buffer_body(REF)))
    assert first.inputs["features"]["ref"]["layer"] == "pts"
    again = run_rerun(run_id=first.id, tenant_id=first.tenant_id, principal=principal_of(editor))
    second = ProcessRun.objects.get(id=again.run_id)
    assert second.inputs["features"]["count"] == len(_selected())
    assert second.inputs["features"]["source"] == first.inputs["features"]["source"]
    # The layer gone, the same reference is refused anew rather than read blindly.
    Layer.objects.filter(collection_id="pts").delete()
    with pytest.raises(InvalidParameterValue, match="no layer 'pts'"):
        run_rerun(run_id=first.id, tenant_id=first.tenant_id, principal=principal_of(editor))


def test_a_layer_that_cannot_be_published_fails_the_run(editor, pts):
    from controlplane.tasks import run_execute

    result = run_submit(ExecutionRequest(
        process_id="buffer",
        inputs={"features": {"layer": "pts", "filter": "v < 5", "filter_lang": "cql2-text"},
                "distance": {"value": 10, "unit": "meter"}},
        principal=principal_of(editor), surface=Surface.OGC, mode=ExecutionMode.ASYNC,
        outputs={"result": OutputRequest(register_as={"collection_id": "late", "title": "late", "ttl_seconds": None})},
    ))
    # Taken between submission and completion: the run must not succeed without its layer.
    layer_publish(tenant_id=_tenant().pk, collection_id="late", title="someone else's",
                  features={"type": "FeatureCollection", "srid": 4326, "features": POINTS[:2]})
    run_execute(str(result.run_id))
    run = ProcessRun.objects.get(id=result.run_id)
    assert run.status == "failed" and run.error["code"] == "layer-publish-failed", (run.status, run.error)
    assert "late" in run.error["message"]
    assert Layer.objects.get(collection_id="late").feature_count == 2  # the other layer is untouched
