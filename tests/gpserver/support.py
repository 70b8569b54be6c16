"""Helpers of the GPServer tests: a client that checks Esri's conventions on every answer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.test import Client

ROOT = "/arcgis/rest/services"
GEOMETRY = f"{ROOT}/Honua/Geometry/GPServer"
ANALYSIS = f"{ROOT}/Honua/Analysis/GPServer"
EXPECTED = Path(__file__).parent / "expected"


class GPClient:
    """A Django test client speaking GPServer: every answer is HTTP 200 (errors too)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get(self, path: str, **params: Any) -> Any:
        params.setdefault("f", "json")
        response = self.client.get(path, params)
        return _json(response)

    def post(self, path: str, multipart: bool = False, **params: Any) -> Any:
        params.setdefault("f", "json")
        data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        if multipart:
            response = self.client.post(path, data)
        else:
            from urllib.parse import urlencode

            response = self.client.post(path, urlencode(data), content_type="application/x-www-form-urlencoded")
        return _json(response)

    def html(self, path: str, method: str = "get", **params: Any) -> str:
        params.setdefault("f", "html")
        response = getattr(self.client, method)(path, params)
        assert response.status_code == 200, response.status_code
        assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
        return response.content.decode()


def _json(response: Any) -> Any:
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    return json.loads(response.content)


def assert_error(doc: Any, code: int | None = None, text: str = "") -> dict[str, Any]:
    """An Esri error envelope: {"error": {"code": int, "message": str, "details": [str]}}."""
    assert set(doc) >= {"error"}, doc
    error = doc["error"]
    assert isinstance(error["code"], int) and isinstance(error["message"], str), error
    assert isinstance(error["details"], list) and all(isinstance(d, str) for d in error["details"]), error
    if code is not None:
        assert error["code"] == code, error
    if text:
        assert text.lower() in (error["message"] + " ".join(error["details"])).lower(), error
    return error


def expected(name: str, actual: Any) -> None:
    """Compare with checked-in expected JSON (HONUA_REGEN_EXPECTED=1 rewrites the file)."""
    import os

    path = EXPECTED / f"{name}.json"
    text = json.dumps(actual, indent=2, sort_keys=True) + "\n"
    if os.environ.get("HONUA_REGEN_EXPECTED") == "1":
        path.write_text(text)
    assert path.exists(), f"{path.name} is missing; run with HONUA_REGEN_EXPECTED=1, review, commit"
    assert json.loads(path.read_text()) == json.loads(text), f"{path.name} differs from the answer"


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


def point_featureset(*points: tuple[float, float], wkid: int = 4326, **attributes: Any) -> dict[str, Any]:
    """A point FeatureSet as arcgis-python's FeatureSet.to_dict writes it."""
    return {
        "features": [
            {"geometry": {"x": x, "y": y, "spatialReference": {"wkid": wkid}},
             "attributes": {"OBJECTID": i + 1, **attributes}}
            for i, (x, y) in enumerate(points)
        ],
        "objectIdFieldName": "OBJECTID",
        "spatialReference": {"wkid": wkid},
        "geometryType": "esriGeometryPoint",
        "fields": [{"name": "OBJECTID", "type": "esriFieldTypeOID", "alias": "OBJECTID"}]
        + [{"name": k, "type": "esriFieldTypeString", "alias": k, "length": 50} for k in attributes],
    }
