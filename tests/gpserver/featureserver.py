"""A feature service on loopback for the tests of inputs given by URL: a real HTTP server
(threaded ``http.server``) answering ``<layer>/query`` as an ArcGIS FeatureServer does."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

LAYER = "/arcgis/rest/services/Parcels/FeatureServer/0"


def parcel(oid: int, x: float, y: float, name: str) -> dict[str, Any]:
    return {"attributes": {"OBJECTID": oid, "NAME": name, "UPDATED": 1700000000000 + oid},
            "geometry": {"x": x, "y": y}}


@dataclass
class Layer:
    """What the service holds and how it answers."""

    features: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 1000
    wkid: int = 4326
    # Instead of features: "error" (an Esri error envelope), "http500", "html", "slow",
    # "no-paging" (ignores resultOffset), "endless" (exceededTransferLimit without features).
    mode: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)

    def answer(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        if self.mode == "http500":
            return 500, "text/plain", b"internal error"
        if self.mode == "html":
            return 200, "text/html", b"<html><body>Sign in</body></html>"
        if self.mode == "error":
            body = {"error": {"code": 400, "message": "Unable to complete operation.",
                              "details": ["Invalid query parameters: where"]}}
            return 200, "application/json", json.dumps(body).encode()
        if self.mode == "slow":
            time.sleep(2.0)
        where = params.get("where", "")
        rows = self.features
        if "NAME = '" in where:
            wanted = where.split("NAME = '")[1].split("'")[0]
            rows = [f for f in rows if f["attributes"]["NAME"] == wanted]
        offset = 0 if self.mode == "no-paging" else int(params.get("resultOffset") or 0)
        page = rows[offset: offset + self.page_size]
        exceeded = offset + len(page) < len(rows)
        if self.mode == "endless":
            page, exceeded = [], True
        body = {
            "objectIdFieldName": "OBJECTID",
            "geometryType": "esriGeometryPoint",
            "spatialReference": {"wkid": self.wkid, "latestWkid": self.wkid},
            "fields": [
                {"name": "OBJECTID", "type": "esriFieldTypeOID", "alias": "OBJECTID"},
                {"name": "NAME", "type": "esriFieldTypeString", "alias": "Name", "length": 50},
                {"name": "UPDATED", "type": "esriFieldTypeDate", "alias": "Updated", "length": 8},
            ],
            "features": page,
        }
        if exceeded:
            body["exceededTransferLimit"] = True
        return 200, "application/json; charset=utf-8", json.dumps(body).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    layers: dict[str, Layer] = {}

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        layer = self.layers.get(parts.path.removesuffix("/query"))
        if layer is None or not parts.path.endswith("/query"):
            self.send_response(404)
            self.end_headers()
            return
        layer.requests.append(params)
        status, media, body = layer.answer(params)
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def feature_server(layers: dict[str, Layer]) -> Iterator[str]:
    """Serve ``layers`` (path -> Layer) on 127.0.0.1; yields the base URL."""
    handler = type("Handler", (_Handler,), {"layers": layers})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
