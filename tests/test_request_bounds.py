"""Requests are bounded before they are parsed, on both surfaces: body size (announced or
chunked), JSON nesting depth and number of values (OGC bodies, GPServer bodies and form
fields, uploaded GeoJSON), polygon ring nesting, feature and vertex counts. A violation is a
400/413 in the surface's own error format (OGC exception JSON; GPServer's HTTP 200 envelope),
never a 500 or a hang."""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from controlplane.models import ProcessDefinition, ProcessRun
from controlplane.services import (
    esrijson as geometry,  # Esri rings -> polygons, with the nesting budget
)
from controlplane.services import jsonbounds
from controlplane.services.policy import policy_cache_clear
from tests.gpserver.support import ANALYSIS, GEOMETRY, assert_error
from tests.ogcprocesses.conftest import echo_tier  # noqa: F401  (shared fixture)
from tests.ogcprocesses.support import EXC, check

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
OGC_ECHO = "/ogcapi/processes/echo/execution"
OGC_BUFFER = "/ogcapi/processes/buffer/execution"
GP_ECHO = f"{ANALYSIS}/echo/execute"
GP_BUFFER = f"{GEOMETRY}/buffer/execute"
GP_UPLOAD = f"{ANALYSIS}/uploads/upload"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]


@pytest.fixture
def catalog(honua_catalog, echo_tier):  # noqa: F811
    """The catalog and demo tenant, with a tier that runs echo."""


@pytest.fixture
def limits(settings):
    """Small body limits: 1 MiB per surface, 2 MiB per upload."""
    settings.HONUA = {**settings.HONUA, "OGC_MAX_BODY_BYTES": MB, "GP_MAX_BODY_BYTES": MB, "UPLOAD_MAX_BYTES": 2 * MB}


class Body(io.RawIOBase):
    """A request body as a server hands it over, counting what the application reads;
    ``endless``: a client that never stops sending."""

    def __init__(self, data: bytes = b"", endless: bool = False) -> None:
        self.data, self.endless, self.read_bytes = data, endless, 0

    def read(self, size: int = -1) -> bytes:
        if self.endless:
            out = b"x" * (65536 if size is None or size < 0 else min(size, 65536))
        else:
            end = len(self.data) if size is None or size < 0 else self.read_bytes + size
            out = self.data[self.read_bytes : end]
        self.read_bytes += len(out)
        return out

    def readline(self, size: int = -1) -> bytes:  # Django's multipart parser reads lines too
        return self.read(size)


def _runs() -> int:
    return ProcessRun.objects.count()


def _ogc_error(response, status: int, code: str) -> dict:
    check(response, None)  # an OGC exception document (schema, status, type prefix)
    doc = json.loads(response.content)
    assert response.status_code == status and doc["type"] == EXC + code, (response.status_code, doc)
    return doc


def _gp_error(response, code: int, message_code: str) -> dict:
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    error = assert_error(json.loads(response.content), code)
    assert error["messageCode"] == message_code, error
    return error


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _ogc_echo_body(value: str) -> bytes:
    return b'{"inputs": {"string_input": "x", "object_input": {"value": ' + value.encode() + b"}}}"


# --- body size ---------------------------------------------------------------------------------


def test_ogc_body_over_the_limit_is_413_before_a_byte_is_read(client, limits):
    body = _ogc_echo_body('"' + "x" * (10 * MB) + '"')
    stream = Body(body)
    response = client.generic(
        "POST", OGC_ECHO, b"", content_type="application/json",
        CONTENT_LENGTH=str(len(body)), **{"wsgi.input": stream},
    )
    doc = _ogc_error(response, 413, "payload-too-large")
    assert str(len(body)) in doc["detail"] and str(MB) in doc["detail"]
    assert stream.read_bytes == 0 and _runs() == 0


@pytest.mark.parametrize("multipart", [False, True])
def test_gp_body_over_the_limit_is_413_before_a_byte_is_read(client, limits, multipart):
    if multipart:
        content_type = "multipart/form-data; boundary=xyz"
        body = b"--xyz\r\nContent-Disposition: form-data; name=\"string_input\"\r\n\r\n" + b"x" * (10 * MB) + b"\r\n--xyz--\r\n"
    else:
        content_type = "application/x-www-form-urlencoded"
        body = urlencode({"string_input": "x" * (10 * MB), "f": "json"}).encode()
    stream = Body(body)
    response = client.generic(
        "POST", GP_ECHO, b"", content_type=content_type, CONTENT_LENGTH=str(len(body)), **{"wsgi.input": stream}
    )
    _gp_error(response, 413, "payload-too-large")
    assert stream.read_bytes == 0 and _runs() == 0


def test_uploads_have_their_own_limit(client, limits):
    csv = b"x,y\n" + b"1.5,2.5\n" * (1536 * 1024 // 8)  # 1.5 MiB: over the surface's, within the upload's
    ok = client.post(GP_UPLOAD, {"file": SimpleUploadedFile("points.csv", csv), "f": "json"})
    assert json.loads(ok.content)["item"]["committed"] is True
    big = b"x,y\n" + b"1.5,2.5\n" * (10 * MB // 8)
    response = client.post(GP_UPLOAD, {"file": SimpleUploadedFile("big.csv", big), "f": "json"})
    _gp_error(response, 413, "payload-too-large")


# --- chunked bodies (no Content-Length) ------------------------------------------------------


def _chunked(stream: Body, terminated: bool = True) -> dict:
    """The environ of a chunked request: no Content-Length; a server that ends the input at the
    end of the body (gunicorn) sets ``wsgi.input_terminated``."""
    environ = {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream}
    if terminated:
        environ["wsgi.input_terminated"] = True
    return environ


def test_an_endless_chunked_body_is_cut_at_the_limit(client, limits):
    stream = Body(endless=True)
    started = time.monotonic()
    response = client.generic("POST", OGC_ECHO, b"", content_type="application/json", **_chunked(stream))
    _ogc_error(response, 413, "payload-too-large")
    assert stream.read_bytes == MB + 1 and time.monotonic() - started < 5
    stream = Body(endless=True)
    response = client.generic("POST", GP_ECHO, b"", content_type="application/x-www-form-urlencoded", **_chunked(stream))
    _gp_error(response, 413, "payload-too-large")
    assert stream.read_bytes == MB + 1 and _runs() == 0


@pytest.mark.django_db(transaction=True)  # a sync run executes on another connection
def test_a_chunked_body_within_the_limit_is_read(client, limits):
    body = _ogc_echo_body('{"a": [1, 2]}')
    response = client.generic(
        "POST", OGC_ECHO, b"", content_type="application/json", **_chunked(Body(body)), HTTP_PREFER="return=minimal"
    )
    assert response.status_code in (200, 204), response.content[:300]
    assert ProcessRun.objects.get().inputs["object_input"] == {"a": [1, 2]}
    form = urlencode({"string_input": "chunked", "f": "json"}).encode()
    response = client.generic("POST", GP_ECHO, b"", content_type="application/x-www-form-urlencoded", **_chunked(Body(form)))
    results = json.loads(response.content)["results"]
    assert {"paramName": "output_string_input", "dataType": "GPString", "value": "chunked"} in results, results


def test_a_chunked_body_the_server_cannot_end_is_411(client, limits):
    stream = Body(endless=True)
    response = client.generic(
        "POST", OGC_ECHO, b"", content_type="application/json", **_chunked(stream, terminated=False)
    )
    _ogc_error(response, 411, "length-required")
    response = client.generic(
        "POST", GP_ECHO, b"", content_type="application/x-www-form-urlencoded", **_chunked(stream, terminated=False)
    )
    _gp_error(response, 411, "length-required")
    assert stream.read_bytes == 0


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgis://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def gunicorn() -> Iterator[int]:
    """A real gunicorn (what ``make run`` serves), with 1 MiB body limits; its port."""
    from gunicorn.config import KNOWN_SETTINGS

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "gunicorn", "honua.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", "1", "--worker-class", "gthread", "--threads", "2", "--timeout", "60",
    ]
    if any("--no-control-socket" in (getattr(s, "cli", None) or []) for s in KNOWN_SETTINGS):
        command.append("--no-control-socket")
    env = {**os.environ, "DATABASE_URL": _database_url(), "HONUA_OGC_MAX_BODY_BYTES": str(MB),
           "HONUA_GP_MAX_BODY_BYTES": str(MB)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _send_chunked(port: int, path: str, content_type: str, chunks: list[bytes]) -> tuple[int, bytes, float]:
    """POST a chunked body over a socket (sent on a thread, so an early answer is read while
    the rest is still going out); the status, the body and the seconds it took."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")

    def send() -> None:
        try:
            sock.sendall(head.encode())
            for chunk in chunks:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before taking it all

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        return response.status, response.read(), time.monotonic() - started
    finally:
        sock.close()
        sender.join(10)


@pytest.mark.django_db(transaction=True)
def test_chunked_bodies_through_a_real_gunicorn(gunicorn):
    ten_mb = [b"x" * 65536] * 160
    status, body, seconds = _send_chunked(gunicorn, OGC_ECHO, "application/json", ten_mb)
    doc = json.loads(body)
    assert status == 413 and doc["type"] == EXC + "payload-too-large" and seconds < 15, (status, doc)
    status, body, seconds = _send_chunked(gunicorn, GP_ECHO, "application/x-www-form-urlencoded", ten_mb)
    assert status == 200 and json.loads(body)["error"]["code"] == 413 and seconds < 15, (status, body[:300])
    # Within the limit, gunicorn's de-chunked body reaches the parsers: f=pjson is in it.
    status, body, _ = _send_chunked(gunicorn, "/arcgis/rest/info", "application/x-www-form-urlencoded",
                                    [b"f=pj", b"son"])
    assert status == 200 and body.startswith(b"{\n") and json.loads(body)["currentVersion"], body[:300]


# --- JSON nesting and size -----------------------------------------------------------------------


@pytest.mark.parametrize("levels", [100, 1000, 10_000, 100_000])
def test_deep_json_is_400_on_the_ogc_surface(client, levels):
    started = time.monotonic()
    response = client.post(OGC_ECHO, _ogc_echo_body(_deep(levels)), content_type="application/json")
    doc = _ogc_error(response, 400, "json-too-deep")
    assert "at most 64" in doc["detail"] and time.monotonic() - started < 5 and _runs() == 0


@pytest.mark.django_db(transaction=True)  # a sync run executes on another connection
def test_json_within_the_depth_limit_is_accepted(client):
    response = client.post(OGC_ECHO, _ogc_echo_body(_deep(60)), content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert ProcessRun.objects.get().inputs["object_input"] == orjson.loads(_deep(60))


@pytest.mark.parametrize("levels", [100, 1000, 10_000, 100_000])
def test_deep_json_in_a_gpserver_form_field_is_400(client, levels):
    form = urlencode({"string_input": "x", "object_input": _deep(levels), "f": "json"})
    response = client.post(GP_ECHO, form, content_type="application/x-www-form-urlencoded")
    _gp_error(response, 400, "json-too-deep")
    features = json.dumps({"type": "FeatureCollection", "features": []})[:-2] + _deep(levels) + "]}"
    form = urlencode({"features": features, "distance": "10", "f": "json"})
    response = client.post(GP_BUFFER, form, content_type="application/x-www-form-urlencoded")
    _gp_error(response, 400, "json-too-deep")
    body = b'{"string_input": "x", "object_input": %s, "f": "json"}' % _deep(levels).encode()
    _gp_error(client.post(GP_ECHO, body, content_type="application/json"), 400, "json-too-deep")
    assert _runs() == 0


def test_a_wide_array_of_tiny_values_is_413(client, settings):
    # JSON has no entity references: the cheap way to make a parser allocate a lot is many
    # tiny values (each "[]," costs 3 bytes and about 60 once decoded).
    settings.HONUA = {**settings.HONUA, "JSON_MAX_ITEMS": 100_000}
    wide = "[" + ",".join(["[]"] * 1_000_000) + "]"
    started = time.monotonic()
    doc = _ogc_error(client.post(OGC_ECHO, _ogc_echo_body(wide), content_type="application/json"), 413, "json-too-large")
    assert "at most 100000" in doc["detail"]
    form = urlencode({"string_input": "x", "object_input": wide, "f": "json"})
    _gp_error(client.post(GP_ECHO, form, content_type="application/x-www-form-urlencoded"), 413, "json-too-large")
    assert time.monotonic() - started < 10 and _runs() == 0


def test_malformed_bodies_are_400(client):
    bad_boundary = b"--xx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nabc"
    for content_type, body in (
        ("multipart/form-data; boundary=xx", bad_boundary),  # never closed
        ("multipart/form-data", b"garbage"),  # no boundary
        ("multipart/form-data; boundary=" + "b" * 80, b"--" + b"b" * 80 + b"\r\n\r\n"),  # boundary too long
    ):
        response = client.generic("POST", GP_UPLOAD, body, content_type=content_type)
        assert assert_error(json.loads(response.content), 400)["messageCode"] in ("parse_error", "missing-parameter")
        _ogc_error(client.generic("POST", OGC_ECHO, body, content_type=content_type), 400, "invalid-request")
    _ogc_error(client.post(OGC_ECHO, b'{"inputs": {"string_input": "x"', content_type="application/json"),
               400, "invalid-request")
    _gp_error(client.post(GP_ECHO, b'{"string_input": ', content_type="application/json"), 400, "invalid-request")
    assert _runs() == 0


def test_an_uploaded_geojson_is_bounded_too(client):
    nested: dict = {"type": "Point", "coordinates": [0, 0]}
    for _ in range(100):
        nested = {"type": "GeometryCollection", "geometries": [nested]}
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": nested, "properties": {}}]}
    upload = client.post(GP_UPLOAD, {"file": SimpleUploadedFile("deep.geojson", orjson.dumps(doc)), "f": "json"})
    item = json.loads(upload.content)["item"]["itemID"]
    form = urlencode({"features": json.dumps({"itemID": item}), "distance": "10", "f": "json"})
    error = _gp_error(client.post(GP_BUFFER, form, content_type="application/x-www-form-urlencoded"), 400, "json-too-deep")
    assert item in error["message"] and _runs() == 0


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PE = b"MZ" + b"\x00" * 58 + (64).to_bytes(4, "little") + b"PE\x00\x00" + b"\x00" * 64


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("photo.png", PE),  # a Windows executable
        ("photo.png", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 32),
        ("photo.png", b"\xcf\xfa\xed\xfe" + b"\x00" * 32),  # Mach-O
        ("map.jpg", b"\xef\xbb\xbf  \n<!DOCTYPE html><html><script>alert(1)</script></html>"),
        ("map.gif", b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><script/></html>'),
        ("icon.png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("data.csv", "<html>".encode("utf-16")),  # not text Honua knows: octets, not accepted
    ],
)
def test_uploads_are_typed_by_content_not_by_name(client, name, data):
    response = client.post(GP_UPLOAD, {"file": SimpleUploadedFile(name, data, "image/png"), "f": "json"})
    _gp_error(response, 415, "unsupported-media-type")


def test_an_image_named_like_a_program_is_an_image(client):
    response = client.post(GP_UPLOAD, {"file": SimpleUploadedFile("setup.exe", PNG), "f": "json"})
    item = json.loads(response.content)["item"]
    assert item["committed"] is True
    info = json.loads(client.get(f"{ANALYSIS}/uploads/{item['itemID']}", {"f": "json"}).content)
    download = client.get(f"{ANALYSIS}/uploads/{item['itemID']}/download")
    assert download["Content-Type"] == "image/png" and download["X-Content-Type-Options"] == "nosniff"
    assert info["itemID"] == item["itemID"]


# --- geometry work before admission ----------------------------------------------------------


def _square(size: float, clockwise: bool) -> list[list[float]]:
    ring = [[-size, -size], [size, -size], [size, size], [-size, size], [-size, -size]]
    return ring[::-1] if clockwise else ring


def test_a_polygon_of_thousands_of_nested_rings_is_refused_quickly(client):
    # Every ring counter-clockwise, each inside the next: sorting them into exteriors and holes
    # compares every pair (12.5 million here) before admission could count anything.
    rings = [_square(1 + i, clockwise=False) for i in range(5000)]
    featureset = {"geometryType": "esriGeometryPolygon", "spatialReference": {"wkid": 3857},
                  "features": [{"geometry": {"rings": rings}, "attributes": {}}]}
    form = urlencode({"features": json.dumps(featureset), "distance": "1", "f": "json"})
    started = time.monotonic()
    error = _gp_error(client.post(GP_BUFFER, form, content_type="application/x-www-form-urlencoded"), 400, "invalid-geometry")
    assert "too complex" in error["message"] and time.monotonic() - started < 15 and _runs() == 0


def test_ring_nesting_is_unchanged_within_the_budget(monkeypatch):
    outer, hole, island = _square(10, True), _square(5, False), _square(1, True)
    assert geometry.rings_to_polygons([outer, hole, island]) == [
        [outer[::-1], hole[::-1]], [island[::-1]]
    ]
    # Many polygons of one request share one budget.
    monkeypatch.setattr(geometry, "MAX_NESTING_WORK", 200_000_000)
    rings = [_square(1 + i, clockwise=False) for i in range(150)]
    for _ in range(20):
        assert len(geometry.rings_to_polygons(rings)) == 75  # each alone is within the budget
    with pytest.raises(geometry.errors.InvalidGeometry, match="too complex"), geometry.nesting_budget():
        for _ in range(20):
            geometry.rings_to_polygons(rings)


def test_vertex_and_feature_limits_refuse_before_any_run(client):
    ProcessDefinition.objects.filter(process_id="buffer", is_current=True).update(limits={"max_vertices": 1000})
    policy_cache_clear()
    line = {"type": "LineString", "coordinates": [[i * 0.001, 0.0] for i in range(5000)]}
    body = {"inputs": {"features": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": line, "properties": {}}]}, "distance": 10}}
    response = client.post(OGC_BUFFER, json.dumps(body), content_type="application/json")
    _ogc_error(response, 413, "input-limit-exceeded")
    # Coordinates nested deeper than any geometry (within the JSON depth limit) are a 400.
    deep = json.loads(_deep(40).replace("[]", "[0, 0]"))
    body = {"inputs": {"features": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": deep}, "properties": {}}]}, "distance": 10}}
    _ogc_error(client.post(OGC_BUFFER, json.dumps(body), content_type="application/json"), 400, "invalid-geometry")
    assert _runs() == 0


def _polygon(vertices: int) -> dict:
    """One ring of ``vertices`` vertices (a circle), closed."""
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    ring = np.column_stack([np.cos(angles), np.sin(angles)]).round(7).tolist()
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_a_million_vertex_polygon_is_refused_before_any_run(client):
    """A 1,000,000-vertex polygon (about 20 MB of JSON, under the 50 MiB body limit) to a
    process that takes at most 100,000 vertices: 413 on both surfaces, quickly, no run."""
    ProcessDefinition.objects.filter(process_id="buffer", is_current=True).update(limits={"max_vertices": 100_000})
    policy_cache_clear()
    polygon = _polygon(1_000_000)
    body = orjson.dumps({"inputs": {"features": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": polygon, "properties": {}}]}, "distance": 10}})
    started = time.monotonic()
    doc = _ogc_error(client.post(OGC_BUFFER, body, content_type="application/json"), 413, "input-limit-exceeded")
    assert "1000001 vertices" in doc["detail"] and time.monotonic() - started < 30
    ring = polygon["coordinates"][0][::-1]  # Esri: exterior clockwise
    features = orjson.dumps({"geometryType": "esriGeometryPolygon", "spatialReference": {"wkid": 4326},
                             "features": [{"geometry": {"rings": [ring]}, "attributes": {}}]}).decode()
    form = urlencode({"features": features, "distance": "10", "f": "json"})
    started = time.monotonic()
    error = _gp_error(client.post(GP_BUFFER, form, content_type="application/x-www-form-urlencoded"), 413,
                      "input-limit-exceeded")
    assert "1000001 vertices" in error["message"] and time.monotonic() - started < 30
    assert _runs() == 0


def test_a_50_mb_body_under_the_default_limits_is_413_before_a_byte_is_read(client):
    """The default body limit (HONUA_MAX_REQUEST_BYTES, 50 MiB) on both surfaces."""
    body = b"x" * (50 * MB + 1)
    for path, content_type in ((OGC_ECHO, "application/json"), (GP_ECHO, "application/x-www-form-urlencoded")):
        stream = Body(body)
        response = client.generic("POST", path, b"", content_type=content_type, CONTENT_LENGTH=str(len(body)),
                                  **{"wsgi.input": stream})
        if path == OGC_ECHO:
            _ogc_error(response, 413, "payload-too-large")
        else:
            _gp_error(response, 413, "payload-too-large")
        assert stream.read_bytes == 0
    assert _runs() == 0


@pytest.mark.django_db(transaction=True)
def test_the_server_stays_responsive_while_it_refuses(gunicorn):
    """Hostile bodies on one connection after another (100,000-deep nesting, 10 MB chunked)
    while a client asks for the service directory: every answer still comes within a second
    or two, and every hostile request is refused."""
    stop = threading.Event()
    refused: list[int] = []

    def attack() -> None:
        deep = _ogc_echo_body(_deep(100_000))
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=30)
            conn.request("POST", OGC_ECHO, deep, {"Content-Type": "application/json"})
            refused.append(conn.getresponse().status)
            conn.close()
            status, _, _ = _send_chunked(gunicorn, OGC_ECHO, "application/json", [b"x" * 65536] * 160)
            refused.append(status)

    attackers = [threading.Thread(target=attack, daemon=True) for _ in range(2)]
    for t in attackers:
        t.start()
    try:
        slowest = 0.0
        for _ in range(20):
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=30)
            conn.request("GET", "/arcgis/rest/services?f=json")
            response = conn.getresponse()
            assert response.status == 200 and b"folders" in response.read()
            conn.close()
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in attackers:
            t.join(60)
    assert refused and set(refused) <= {400, 413}, refused
    assert slowest < 3, f"a plain request took {slowest:.2f} s while hostile ones were refused"


# --- the scan itself -------------------------------------------------------------------------------


def _reference_measure(text: str) -> tuple[int, int]:
    """The same measure by a plain character loop (slow, obviously right)."""
    depth = deepest = items = 0
    inside = escaped = False
    for ch in text:
        if inside:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                inside = False
        elif ch == '"':
            inside = True
        elif ch in "[{":
            depth += 1
            items += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
        elif ch == ",":
            items += 1
    return deepest, items


def _random_json(rng: random.Random, depth: int = 0) -> object:
    pick = rng.random()
    if depth > 6 or pick < 0.3:
        return rng.choice([0, 1.5, -2e10, True, None, "", "a\\", '"[{', "\\\\", '\\"]', "é\u2028", "x" * rng.randint(0, 40)])
    if pick < 0.65:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {rng.choice(["k", "[", "\\", '"']) + str(i): _random_json(rng, depth + 1) for i in range(rng.randint(0, 5))}


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 1 << 20])
def test_the_scan_matches_a_plain_parse_across_block_boundaries(monkeypatch, block):
    monkeypatch.setattr(jsonbounds, "_BLOCK", block)
    rng = random.Random(block)
    for _ in range(150 if block > 3 else 25):
        doc = _random_json(rng)
        for text in (json.dumps(doc), orjson.dumps(doc).decode(), json.dumps(doc, ensure_ascii=False, indent=1)):
            assert jsonbounds.json_measure(text) == _reference_measure(text), text
