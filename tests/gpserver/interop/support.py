"""Helpers of the GPServer interop tests: time-bounded client calls and buffer geometry checks."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from pyproj import Geod, Transformer
from shapely.geometry import LinearRing, Point, Polygon

T = TypeVar("T")

# The test point (Honolulu) and the buffer distance the tests ask for.
LON, LAT = -157.8583, 21.3069
RADIUS_M = 100.0

_GEOD = Geod(ellps="WGS84")
_WEB_MERCATOR = {102100, 102113, 3857, 900913, 3785}
_TO_LONLAT = Transformer.from_crs(3857, 4326, always_xy=True)


def bounded(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a daemon thread; fail the test if it has not returned after
    ``seconds`` (a client stuck polling a server that never answers right must not hang CI).
    Exceptions of ``fn`` are re-raised here."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001  (handed to the test thread)
            box["error"] = exc

    name = getattr(fn, "__qualname__", repr(fn))
    thread = threading.Thread(target=run, name=f"bounded-{name}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{name} did not return within {seconds:g} s: the client hangs", pytrace=False)
    if "error" in box:
        raise box["error"]
    return box["value"]


def missing_client(what: str, how: str) -> None:
    """A client that `make test` installs is missing: fail under CI, skip elsewhere."""
    message = f"{what} is not installed ({how}; `make test` installs it)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def point_feature_set(wkid: int = 4326) -> dict[str, Any]:
    """One point (the test point) with two attributes, as Esri FeatureSet JSON."""
    if wkid in _WEB_MERCATOR:
        x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(LON, LAT)
        sr: dict[str, Any] = {"wkid": 102100, "latestWkid": 3857}
    else:
        x, y = LON, LAT
        sr = {"wkid": wkid}
    return {
        "geometryType": "esriGeometryPoint",
        "spatialReference": sr,
        "fields": [
            {"name": "OBJECTID", "type": "esriFieldTypeOID", "alias": "OBJECTID"},
            {"name": "name", "type": "esriFieldTypeString", "alias": "Name", "length": 20},
        ],
        "features": [
            {"geometry": {"x": x, "y": y, "spatialReference": sr}, "attributes": {"OBJECTID": 1, "name": "a"}}
        ],
    }


def _wkid(sr: dict[str, Any] | None) -> int | None:
    if not sr:
        return None
    return sr.get("latestWkid") or sr.get("wkid")


def check_buffer(feature_set: dict[str, Any], radius_m: float = RADIUS_M) -> dict[str, Any]:
    """Assert that an Esri FeatureSet (JSON) is one polygon of ~radius_m on the ground around
    the test point, exterior ring clockwise as Esri wants. Returns the feature's attributes."""
    features = feature_set.get("features") or []
    assert len(features) == 1, f"one buffer polygon expected, got {len(features)}: {feature_set!r:.500}"
    gtype = feature_set.get("geometryType")
    assert gtype in (None, "esriGeometryPolygon"), f"geometryType {gtype!r}"
    geometry = features[0]["geometry"]
    assert "rings" in geometry, f"not an Esri polygon: {geometry!r:.300}"
    wkid = _wkid(feature_set.get("spatialReference")) or _wkid(geometry.get("spatialReference"))
    assert wkid in ({4326} | _WEB_MERCATOR), f"unexpected output spatial reference {wkid!r}"
    rings = geometry["rings"]
    assert len(rings) == 1, f"a buffer of a point has one ring, got {len(rings)}"
    ring = [tuple(c[:2]) for c in rings[0]]
    assert ring[0] == ring[-1], "ring not closed"
    assert not LinearRing(ring).is_ccw, "exterior ring is counter-clockwise (Esri: clockwise)"
    if wkid in _WEB_MERCATOR:
        lonlat = [_TO_LONLAT.transform(x, y) for x, y in ring]
    else:
        lonlat = ring
    assert Polygon(lonlat).contains(Point(LON, LAT)), "the buffer does not contain the input point"
    distances = [_GEOD.inv(LON, LAT, x, y)[2] for x, y in lonlat[:-1]]
    assert min(distances) > 0.95 * radius_m and max(distances) < 1.02 * radius_m, (
        f"vertices at {min(distances):.1f}..{max(distances):.1f} m from the point, not ~{radius_m:g} m"
    )
    xs, ys = zip(*lonlat, strict=True)
    area = abs(_GEOD.polygon_area_perimeter(xs, ys)[0])
    assert 0.95 < area / (math.pi * radius_m**2) < 1.01, f"area {area:.0f} m² is not ~π·{radius_m:g}²"
    return dict(features[0].get("attributes") or {})
