"""Result and input requests: outSR (wkid, latestWkid, spatialReference JSON, WKT), returnZ,
returnM, returnType=data, and the formats f=geojson, f=kmz (and pbf/image refused)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile

import pyogrio
import pytest
from pyproj import CRS, Transformer

from controlplane.tasks import run_execute
from gpserver import geometry as geo
from gpserver import translate
from tests.gpserver.support import ANALYSIS, GEOMETRY, assert_error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gp")]

DISTANCE = {"distance": 100, "units": "esriMeters"}
BUFFER = f"{ANALYSIS}/buffer"
TO_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
KML = "{http://www.opengis.net/kml/2.2}"


def _points(*xyz, wkid=4326, has_z=False):
    return {
        "geometryType": "esriGeometryPoint", "spatialReference": {"wkid": wkid}, "hasZ": has_z,
        "fields": [{"name": "OBJECTID", "type": "esriFieldTypeOID", "alias": "OBJECTID"},
                   {"name": "name", "type": "esriFieldTypeString", "alias": "name", "length": 20}],
        "features": [{"geometry": dict(zip(("x", "y", "z"), p, strict=False)), "attributes": {"OBJECTID": i + 1, "name": f"p{i}"}}
                     for i, p in enumerate(xyz)],
    }


def _job(api, task=BUFFER, **params):
    params = params or {"features": _points((10, 50), (11, 51)), "distance": DISTANCE}
    job = api.post(f"{task}/submitJob", **params)["jobId"]
    assert run_execute(str(translate.run_id_of(job))) == "done"
    assert api.get(f"{task}/jobs/{job}")["jobStatus"] == "esriJobSucceeded"
    return f"{task}/jobs/{job}"


def _raw(api, path, **params):
    response = api.client.get(path, params)
    assert response.status_code == 200, response.status_code
    return response


# --- outSR -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "out_sr",
    ["3857", "102100", json.dumps({"wkid": 102100}), json.dumps({"latestWkid": 3857}),
     json.dumps({"wkid": 102100, "latestWkid": 3857}), CRS.from_epsg(3857).to_wkt(),
     json.dumps({"wkt": CRS.from_epsg(3857).to_wkt()})],
)
def test_result_and_input_reprojected_to_out_sr(api, out_sr):
    job = _job(api)
    plain = api.get(f"{job}/results/result")["value"]
    moved = api.get(f"{job}/results/result", outSR=out_sr)["value"]
    assert plain["spatialReference"] == {"wkid": 4326, "latestWkid": 4326}
    assert moved["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
    for before, after in zip(plain["features"], moved["features"], strict=True):
        assert after["attributes"] == before["attributes"]
        ring_before, ring_after = before["geometry"]["rings"][0], after["geometry"]["rings"][0]
        assert len(ring_after) == len(ring_before)
        for (x, y), (mx, my) in zip(ring_before, ring_after, strict=True):
            ex, ey = TO_3857.transform(x, y)
            assert mx == pytest.approx(ex, abs=1e-3) and my == pytest.approx(ey, abs=1e-3)
        assert geo.signed_area(ring_after) < 0  # still clockwise, as Esri writes exteriors
    features_in = api.get(f"{job}/inputs/features", outSR=out_sr)["value"]
    assert features_in["spatialReference"]["latestWkid"] == 3857
    assert features_in["features"][0]["geometry"]["x"] == pytest.approx(TO_3857.transform(10, 50)[0])
    # Without outSR the input is as the job received it.
    assert api.get(f"{job}/inputs/features")["value"]["features"][0]["geometry"] == {"x": 10, "y": 50}


def test_out_sr_of_an_esri_only_code_and_of_a_bbox(api):
    job = _job(api)
    albers = api.get(f"{job}/results/result", outSR="102003")["value"]  # USA Contiguous Albers (Esri)
    assert albers["spatialReference"] == {"wkid": 102003, "latestWkid": 102003}
    x, y = albers["features"][0]["geometry"]["rings"][0][0][:2]
    assert x > 3_000_000 and y > 4_000_000  # central Europe, far east of the USA's centre
    echo = _job(api, f"{ANALYSIS}/echo", string_input="x",
                bbox_input={"xmin": 10, "ymin": 50, "xmax": 11, "ymax": 51, "spatialReference": {"wkid": 4326}})
    box = api.get(f"{echo}/results/bbox_input", outSR="3857")["value"]
    x0, y0 = TO_3857.transform(10, 50)
    x1, y1 = TO_3857.transform(11, 51)
    assert box["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
    assert (box["xmin"], box["ymin"], box["xmax"], box["ymax"]) == pytest.approx((x0, y0, x1, y1), abs=1e-3)


def test_bad_out_sr_is_an_error(api):
    job = _job(api)
    assert_error(api.get(f"{job}/results/result", outSR="999999"), 400, "unknown spatial reference 999999")
    assert_error(api.get(f"{job}/results/result", outSR="{bad json"), 400, "outSR")
    assert_error(api.get(f"{job}/results/result", outSR="PROJCS[nonsense]"), 400, "outSR")
    assert_error(api.get(f"{job}/results/result", outSR=json.dumps({"foo": 1})), 400, "outSR")


def test_execute_takes_env_out_sr_as_wkt(api):
    doc = api.post(f"{GEOMETRY}/centroid/execute", features=_points((10, 50)),
                   **{"env:outSR": CRS.from_epsg(3857).to_wkt()})
    value = doc["results"][0]["value"]
    assert value["spatialReference"]["latestWkid"] == 3857
    assert value["features"][0]["geometry"]["x"] == pytest.approx(TO_3857.transform(10, 50)[0], abs=1e-3)


# --- returnZ, returnM, returnType ----------------------------------------------------------------


def test_return_z_and_m_on_results_and_inputs(api):
    job = _job(api, f"{GEOMETRY}/project", features=_points((10, 50, 120.5), (11, 51, 80), has_z=True),
               target_srid=json.dumps({"wkid": 3857}))
    plain = api.get(f"{job}/results/result")["value"]
    assert plain["hasZ"] is False and "z" not in plain["features"][0]["geometry"]
    with_z = api.get(f"{job}/results/result", returnZ="true")["value"]
    assert with_z["hasZ"] is True and [f["geometry"]["z"] for f in with_z["features"]] == [120.5, 80]
    with_zm = api.get(f"{job}/results/result", returnZ="True", returnM="true")["value"]
    assert with_zm["hasZ"] is True and with_zm["hasM"] is False  # no measures to return
    inputs = api.get(f"{job}/inputs/features", returnZ="true")["value"]
    assert inputs["hasZ"] is True and inputs["features"][0]["geometry"] == {"x": 10, "y": 50, "z": 120.5}
    # outSR and returnZ together: x/y reprojected, z kept.
    both = api.get(f"{job}/inputs/features", returnZ="true", outSR="3857")["value"]
    assert both["features"][1]["geometry"]["z"] == 80
    assert both["features"][1]["geometry"]["x"] == pytest.approx(TO_3857.transform(11, 51)[0])


def test_return_type_data(api):
    job = _job(api)
    assert api.get(f"{job}/results/result", returnType="data") == api.get(f"{job}/results/result")
    assert_error(api.get(f"{job}/results/result", returnType="mapImage"), 400, "returnType")


# --- f=geojson -------------------------------------------------------------------------------------


def test_geojson_result_is_rfc7946_in_wgs84(api):
    job = _job(api, features=_points((10, 50), (11, 51)), distance=DISTANCE, **{"env:outSR": "3857"})
    assert api.get(f"{job}/results/result")["value"]["spatialReference"]["latestWkid"] == 3857
    response = _raw(api, f"{job}/results/result", f="geojson")
    assert response["Content-Type"].startswith("application/geo+json")
    doc = json.loads(response.content)
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert [f["id"] for f in doc["features"]] == [1, 2]
    assert [f["properties"] for f in doc["features"]] == [{"name": "p0"}, {"name": "p1"}]
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    assert doc["features"][0]["geometry"]["type"] == "Polygon"
    assert geo.signed_area(ring) > 0  # right-hand rule: exterior counter-clockwise
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert (sum(xs) / len(xs), sum(ys) / len(ys)) == pytest.approx((10, 50), abs=0.01)  # back in lon/lat
    assert all(len(p) == 2 for p in ring)


def test_geojson_honours_out_sr_and_return_z(api):
    job = _job(api, f"{GEOMETRY}/project", features=_points((10, 50, 7), has_z=True),
               target_srid=json.dumps({"wkid": 4326}))
    doc = json.loads(_raw(api, f"{job}/results/result", f="geojson", outSR="3857").content)
    assert doc["crs"] == {"type": "name", "properties": {"name": "EPSG:3857"}}
    assert doc["features"][0]["geometry"]["coordinates"] == pytest.approx(list(TO_3857.transform(10, 50)))
    with_z = json.loads(_raw(api, f"{job}/inputs/features", f="geojson", returnZ="true").content)
    assert with_z["features"][0]["geometry"] == {"type": "Point", "coordinates": [10, 50, 7]}


def test_geojson_of_other_outputs_is_the_error_envelope(api):
    job = _job(api, f"{ANALYSIS}/echo", string_input="x")
    response = _raw(api, f"{job}/results/string_input", f="geojson")
    assert response["Content-Type"].startswith("application/json")
    error = assert_error(json.loads(response.content), 400, "format not supported for this result (GPString)")
    assert error["messageCode"] == "format-not-supported"
    assert_error(json.loads(_raw(api, f"{job}/inputs/string_input", f="kmz").content), 400, "format not supported")


# --- f=kmz ------------------------------------------------------------------------------------------


def test_kmz_result_is_a_real_kmz(api, tmp_path):
    job = _job(api, features=_points((10, 50), (11, 51)), distance=DISTANCE, **{"env:outSR": "3857"})
    response = _raw(api, f"{job}/results/result", f="kmz")
    assert response["Content-Type"] == "application/vnd.google-earth.kmz"
    assert response["Content-Disposition"] == 'attachment; filename="result.kmz"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.namelist() == ["doc.kml"]
    root = ET.fromstring(archive.read("doc.kml"))
    placemarks = root.findall(f".//{KML}Placemark")
    assert len(placemarks) == 2
    # A "name" attribute names the placemark (GDAL's KML convention); the others are data.
    assert [p.find(f"{KML}name").text for p in placemarks] == ["p0", "p1"]
    assert [d.text for d in root.iter(f"{KML}SimpleData") if d.get("name") == "OBJECTID"] == ["1", "2"]
    first = placemarks[0].find(f".//{KML}coordinates").text.split()
    lons = [float(c.split(",")[0]) for c in first]
    lats = [float(c.split(",")[1]) for c in first]
    assert sum(lons) / len(lons) == pytest.approx(10, abs=0.01) and sum(lats) / len(lats) == pytest.approx(50, abs=0.01)
    # GDAL reads it back: two polygons in WGS 84.
    path = tmp_path / "result.kmz"
    path.write_bytes(response.content)
    info = pyogrio.read_info(path)
    assert info["features"] == 2 and info["crs"] == "EPSG:4326"
    assert info["total_bounds"][0] == pytest.approx(10, abs=0.01)


# --- formats a result does not come in ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pbf", "image"])
def test_pbf_and_image_are_refused_with_the_envelope(api, fmt):
    job = _job(api)
    for path in (f"{job}/results/result", f"{job}/inputs/features"):
        response = _raw(api, path, f=fmt)
        assert response["Content-Type"].startswith("application/json")
        error = assert_error(json.loads(response.content), 400, f"f={fmt}: format not supported for this")
        assert error["messageCode"] == "format-not-supported"
    # Elsewhere the formats of results are no formats at all.
    assert_error(api.get(f"{ANALYSIS}", f="geojson"), 400, "not supported here")
