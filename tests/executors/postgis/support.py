"""Helpers of postgis tier tests: inputs as WKB arrays and feature collections, a reference
DBSCAN, geodesic measures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import shapely
from pyproj import Geod
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

GEOD = Geod(ellps="WGS84")


def wkb(geoms: Sequence[shapely.Geometry | None]) -> list[bytes | None]:
    return [None if g is None else shapely.to_wkb(g) for g in geoms]


def geom(data: bytes | None) -> shapely.Geometry | None:
    return None if data is None else shapely.from_wkb(data)


def fc(geoms: Sequence[shapely.Geometry | None], srid: int = 4326, **extra: Any) -> dict[str, Any]:
    """A feature_collection value (ids "f0".., properties {"i": index, "name": ...})."""
    features = [
        {
            "type": "Feature",
            "id": f"f{i}",
            "properties": {"i": i, "name": f"feature {i}"},
            "geometry": None if g is None else orjson.loads(shapely.to_geojson(g)),
        }
        for i, g in enumerate(geoms)
    ]
    return {"type": "FeatureCollection", "srid": srid, "features": features, **extra}


def shape(feature: dict[str, Any]) -> shapely.Geometry | None:
    g = feature["geometry"]
    return None if g is None else shapely.from_geojson(orjson.dumps(g))


def geodesic_area(g: shapely.Geometry) -> float:
    area, _ = GEOD.geometry_area_perimeter(g)
    return abs(area)


def reference_dbscan(dist: np.ndarray, eps: float, min_points: int) -> list[int]:
    """Textbook DBSCAN on a full distance matrix: labels 0.. in order of each cluster's
    first point, -1 for noise."""
    n = len(dist)
    neighbours = [np.flatnonzero(dist[i] <= eps) for i in range(n)]
    core = np.array([len(nb) >= min_points for nb in neighbours])
    labels = [-1] * n
    cluster = 0
    for i in range(n):
        if labels[i] != -1 or not core[i]:
            continue
        labels[i] = cluster
        stack = [i]
        while stack:
            j = stack.pop()
            if not core[j]:
                continue
            for k in neighbours[j].tolist():
                if labels[k] == -1:
                    labels[k] = cluster
                    stack.append(k)
        cluster += 1
    # Renumber by each cluster's first member, as the SQL function does.
    order: dict[int, int] = {}
    for label in labels:
        if label >= 0 and label not in order:
            order[label] = len(order)
    return [order.get(label, -1) for label in labels]


def by_first_member(labels: Any) -> list[int]:
    """Cluster labels renumbered 0, 1, ... in the order of each cluster's first member."""
    order: dict[int, int] = {}
    return [order.setdefault(int(label), len(order)) for label in labels]


def inertia(xy: np.ndarray, labels: Any) -> float:
    """Sum of squared distances of the points to their cluster's mean."""
    labels = np.asarray(labels)
    return float(
        sum(((xy[labels == c] - xy[labels == c].mean(axis=0)) ** 2).sum() for c in set(labels.tolist()))
    )


def blobs(seed: int, spread: float) -> np.ndarray:
    """300 points around 5 centres (normal, ``spread`` standard deviation), shuffled."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [1000, 0], [0, 1000], [1000, 1000], [500, 2000]])
    xy = np.vstack([c + rng.normal(0, spread, (60, 2)) for c in centres])
    return xy[rng.permutation(len(xy))]


def reference_kmeans(xy: np.ndarray, k: int, n_init: int = 10) -> KMeans:
    """scikit-learn's KMeans fitted on one thread (its OpenMP threads crawl on a busy
    2-core machine: 9 s instead of 0.3 s for 324 points)."""
    with threadpool_limits(1):
        return KMeans(n_clusters=k, n_init=n_init, random_state=0).fit(xy)
