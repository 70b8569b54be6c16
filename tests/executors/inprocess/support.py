"""Helpers for in-process tier tests: build inputs, run a handler, read the result."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import shapely
from pyproj import Geod

from executors.base import ExecutionContext
from executors.inprocess.executor import InProcessExecutor

EXECUTOR = InProcessExecutor()
GEOD = Geod(ellps="WGS84")


def fc(
    geoms: list[shapely.Geometry | None],
    srid: int = 4326,
    props: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A feature_collection internal value (ids 0..n-1, properties {"i": index})."""
    features = []
    for i, geom in enumerate(geoms):
        features.append(
            {
                "type": "Feature",
                "id": i,
                "properties": props[i] if props else {"i": i},
                "geometry": None if geom is None else orjson.loads(shapely.to_geojson(geom)),
            }
        )
    return {"type": "FeatureCollection", "srid": srid, "features": features}


def geometry(geom: shapely.Geometry, srid: int = 4326) -> dict[str, Any]:
    return {**orjson.loads(shapely.to_geojson(geom)), "srid": srid}


def meters(value: float, unit: str = "meter") -> dict[str, Any]:
    return {"value": value, "unit": unit}


def context(**kwargs: Any) -> ExecutionContext:
    return ExecutionContext(run_id="run", process_id="test", handler="test", **kwargs)


def run(handler: str, inputs: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    """The ``result`` feature collection of ``handler``."""
    return EXECUTOR.execute(handler, inputs, context(**ctx))["result"]


def geoms(result: dict[str, Any]) -> list[shapely.Geometry | None]:
    return [
        None if f["geometry"] is None else shapely.from_geojson(orjson.dumps(f["geometry"]))
        for f in result["features"]
    ]


def props(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [f["properties"] for f in result["features"]]


def ground_distances(lon: float, lat: float, geom: shapely.Geometry) -> np.ndarray:
    """Geodesic distances (m) from (lon, lat) to every vertex of ``geom``."""
    coords = shapely.get_coordinates(geom)
    _, _, dist = GEOD.inv(
        np.full(len(coords), lon), np.full(len(coords), lat), coords[:, 0], coords[:, 1]
    )
    return np.asarray(dist)
