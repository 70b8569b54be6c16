"""Feature inputs given by URL ({"url": ".../FeatureServer/0", "filter": "<where>"}): read from
a real feature service on loopback through the SSRF-guarded client, paged, bounded, and every
remote failure an Esri error envelope naming the input."""

from __future__ import annotations

import pytest

from controlplane.models import ProcessDefinition, ProcessRun
from controlplane.tasks import run_execute
from gpserver import translate
from tests.gpserver.featureserver import LAYER, Layer, feature_server, parcel
from tests.gpserver.support import ANALYSIS, GEOMETRY, assert_error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gp")]

DISTANCE = {"distance": 100, "units": "esriMeters"}
PARCELS = [parcel(1, 10.0, 50.0, "a"), parcel(2, 11.0, 51.0, "b"), parcel(3, 12.0, 52.0, "a"),
           parcel(4, 13.0, 53.0, "c"), parcel(5, 14.0, 54.0, "a")]


@pytest.fixture
def loopback(settings):
    """Outbound requests may reach exactly the loopback test service's host."""
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_HOSTS": ["127.0.0.1"]}


def _buffer(api, url, where=None, service=GEOMETRY, op="execute", **extra):
    value = {"url": url} if where is None else {"url": url, "filter": where}
    return api.post(f"{service}/buffer/{op}", features=value, distance=DISTANCE, **extra)


@pytest.mark.usefixtures("loopback")
def test_execute_reads_the_layer_with_its_filter(api):
    layer = Layer(features=PARCELS)
    with feature_server({LAYER: layer}) as base:
        doc = _buffer(api, f"{base}{LAYER}", "NAME = 'a'")
    assert [r["paramName"] for r in doc["results"]] == ["result"], doc
    features = doc["results"][0]["value"]["features"]
    assert len(features) == 3 and all("rings" in f["geometry"] for f in features)
    assert [f["attributes"]["NAME"] for f in features] == ["a", "a", "a"]
    # Dates of the service (epoch ms) come back as dates.
    fields = {f["name"]: f["type"] for f in doc["results"][0]["value"]["fields"]}
    assert fields["UPDATED"] == "esriFieldTypeDate"
    assert features[0]["attributes"]["UPDATED"] == 1700000000001
    (query,) = layer.requests
    assert query == {"where": "NAME = 'a'", "outFields": "*", "returnGeometry": "true", "outSR": "4326", "f": "json"}


@pytest.mark.usefixtures("loopback")
def test_no_filter_is_every_feature_and_the_query_url_and_token_are_kept(api):
    layer = Layer(features=PARCELS)
    with feature_server({LAYER: layer}) as base:
        doc = _buffer(api, f"{base}{LAYER}/query?token=secret&f=pjson")
    assert len(doc["results"][0]["value"]["features"]) == 5
    (query,) = layer.requests
    assert query["where"] == "1=1" and query["token"] == "secret" and query["f"] == "json"


@pytest.mark.usefixtures("loopback")
def test_pages_are_followed_with_result_offset(api):
    layer = Layer(features=PARCELS, page_size=2)
    with feature_server({LAYER: layer}) as base:
        job = _buffer(api, f"{base}{LAYER}", service=ANALYSIS, op="submitJob")["jobId"]
    assert [r.get("resultOffset") for r in layer.requests] == [None, "2", "4"]
    # The run's inputs hold what was read (the ledger shows the data the job used).
    run = ProcessRun.objects.get(id=translate.run_id_of(job))
    assert run.feature_count == 5 and [f["id"] for f in run.inputs["features"]["features"]] == [1, 2, 3, 4, 5]
    assert run_execute(str(run.id)) == "done"
    shown = api.get(f"{ANALYSIS}/buffer/jobs/{job}/inputs/features")["value"]
    assert [f["geometry"] for f in shown["features"]][:2] == [{"x": 10, "y": 50}, {"x": 11, "y": 51}]
    result = api.get(f"{ANALYSIS}/buffer/jobs/{job}/results/result")["value"]
    assert [f["attributes"]["NAME"] for f in result["features"]] == ["a", "b", "a", "c", "a"]


@pytest.mark.usefixtures("loopback")
def test_the_layer_is_read_in_the_process_spatial_reference(api):
    layer = Layer(features=[parcel(1, 1113194.9, 6446275.8, "a")], wkid=3857)
    with feature_server({LAYER: layer}) as base:
        doc = _buffer(api, f"{base}{LAYER}", **{"env:processSR": "3857"})
    assert layer.requests[0]["outSR"] == "3857"
    value = doc["results"][0]["value"]
    assert value["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
    xs = [p[0] for p in value["features"][0]["geometry"]["rings"][0]]
    # 100 m on the ground at 50°N is about 155 units of the Web Mercator plane.
    assert 140 < (max(xs) - min(xs)) / 2 < 170


@pytest.mark.usefixtures("loopback")
def test_more_features_than_the_process_takes(api):
    ProcessDefinition.objects.filter(process_id="buffer", is_current=True).update(limits={"max_features": 3})
    layer = Layer(features=PARCELS, page_size=2)
    with feature_server({LAYER: layer}) as base:
        error = assert_error(_buffer(api, f"{base}{LAYER}"), 400, "more than 3 features")
    assert "'features'" in error["message"] and len(layer.requests) == 2  # stopped reading at once
    assert not ProcessRun.objects.exists()


@pytest.mark.usefixtures("loopback")
@pytest.mark.parametrize(
    ("mode", "text"),
    [
        ("error", "answered an error: 400 Unable to complete operation"),
        ("http500", "answered HTTP 500"),
        ("html", "did not answer JSON (it sent text/html)"),
        ("no-paging", "does not page"),
        ("endless", "reports more features but sent none"),
    ],
)
def test_remote_failures_are_invalid_parameter_errors(api, mode, text):
    layer = Layer(features=PARCELS, page_size=2, mode=mode)
    with feature_server({LAYER: layer}) as base:
        error = assert_error(_buffer(api, f"{base}{LAYER}"), 400, text)
    assert error["message"].startswith("input 'features': "), error
    assert error["messageCode"] == "invalid-parameter-value"
    assert "secret" not in str(error)
    assert not ProcessRun.objects.exists()


@pytest.mark.usefixtures("loopback")
def test_a_slow_service_times_out(api, settings):
    settings.HONUA = {**settings.HONUA, "REFERENCE_TIMEOUT_SECONDS": 0.5}
    with feature_server({LAYER: Layer(features=PARCELS, mode="slow")}) as base:
        error = assert_error(_buffer(api, f"{base}{LAYER}"), 400, "did not answer within 0.5 s")
    # the client's URL did not answer: a bad input value (400), not a server failure
    assert error["message"].startswith("input 'features': ") and error["messageCode"] == "invalid-parameter-value"


@pytest.mark.usefixtures("loopback")
def test_too_many_bytes(api):
    ProcessDefinition.objects.filter(process_id="buffer", is_current=True).update(limits={"max_bytes": 600})
    with feature_server({LAYER: Layer(features=PARCELS)}) as base:
        error = assert_error(_buffer(api, f"{base}{LAYER}"), 413, "at most 600 are accepted")
    assert error["messageCode"] == "outbound-too-large" and error["message"].startswith("input 'features': ")


@pytest.mark.usefixtures("loopback")
def test_an_unknown_layer_and_a_url_that_is_no_layer(api):
    with feature_server({LAYER: Layer(features=PARCELS)}) as base:
        assert_error(_buffer(api, f"{base}/arcgis/rest/services/Nope/FeatureServer/3"), 400, "answered HTTP 404")
        assert_error(_buffer(api, f"{base}/data/parcels.json"), 400, "not a feature service layer")
    assert_error(_buffer(api, "ftp://example.com/FeatureServer/0"), 400, "http(s)")


def test_loopback_and_private_addresses_are_refused(api, settings):
    settings.HONUA = {**settings.HONUA, "OUTBOUND_ALLOW_PORTS": []}  # any port: the address decides
    layer = Layer(features=PARCELS)
    with feature_server({LAYER: layer}) as base:  # running, but not on the allow-list
        error = assert_error(_buffer(api, f"{base}{LAYER}"), 400, "loopback address")
    assert error["messageCode"] == "outbound-refused" and error["message"].startswith("input 'features': ")
    assert layer.requests == []
    # Refused from the address alone: nothing is sent to these.
    assert_error(_buffer(api, "http://10.1.2.3/arcgis/rest/services/P/FeatureServer/0"), 400, "private address")
    assert_error(_buffer(api, "http://169.254.169.254/latest/FeatureServer/0"), 400, "cloud metadata address")


@pytest.mark.usefixtures("loopback")
def test_project_features_by_url(api):
    with feature_server({LAYER: Layer(features=PARCELS)}) as base:
        doc = api.post(f"{GEOMETRY}/project/execute", features={"url": f"{base}{LAYER}", "filter": "NAME = 'b'"},
                       target_srid={"wkid": 3857})
    (feature,) = doc["results"][0]["value"]["features"]
    assert feature["attributes"]["NAME"] == "b" and feature["geometry"]["x"] == pytest.approx(1224514.4, abs=1)


@pytest.mark.usefixtures("loopback")
def test_a_geometry_input_by_url_takes_one_feature(api):
    lines = "/arcgis/rest/services/Lines/FeatureServer/2"
    cut = {"attributes": {"OBJECTID": 1, "NAME": "cut"}, "geometry": {"paths": [[[2, 1], [5, -5], [8, 1]]]}}
    other = {"attributes": {"OBJECTID": 2, "NAME": "other"}, "geometry": {"paths": [[[0, 0], [1, 1]]]}}
    square = {"geometryType": "esriGeometryPolygon", "spatialReference": {"wkid": 3857},
              "features": [{"geometry": {"rings": [[[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]]]}, "attributes": {}}]}
    with feature_server({lines: Layer(features=[cut, other], wkid=3857)}) as base:
        doc = api.post(f"{GEOMETRY}/reshape/execute", features=square, **{"env:processSR": "3857"},
                       reshaping_line={"url": f"{base}{lines}", "filter": "NAME = 'cut'"})
        ring = doc["results"][0]["value"]["features"][0]["geometry"]["rings"][0]
        assert min(y for _, y in ring) == pytest.approx(-5)
        assert_error(api.post(f"{GEOMETRY}/reshape/execute", features=square, **{"env:processSR": "3857"},
                              reshaping_line={"url": f"{base}{lines}"}), 400, "takes one geometry")
