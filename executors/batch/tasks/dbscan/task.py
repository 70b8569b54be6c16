"""DBSCAN clustering of points in their CRS's plane (scikit-learn)."""

import numpy as np
from sklearn.cluster import DBSCAN


def run(inputs, ctx):
    fc = inputs["features"]
    eps = inputs.get("eps", 1.0)
    if isinstance(eps, dict):
        eps = eps.get("value")
    eps = float(eps)
    min_points = int(inputs.get("min_points") or 5)
    if eps <= 0:
        raise ctx.InvalidInput("eps must be positive")
    xy = []
    for f in fc.get("features") or []:
        g = f.get("geometry") or {}
        if g.get("type") != "Point":
            raise ctx.InvalidInput("every feature must be a Point")
        xy.append(g["coordinates"][:2])
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    labels = DBSCAN(eps=eps, min_samples=min_points).fit(xy).labels_ if len(xy) else np.zeros(0, int)
    # Clusters numbered 0, 1, ... in the order of each cluster's first feature; -1 noise.
    renumber = {}
    for label in labels:
        if label >= 0 and label not in renumber:
            renumber[label] = len(renumber)
    ctx.message("info", f"{len(renumber)} clusters, {int((labels < 0).sum())} noise points")
    features = []
    for f, label in zip(fc["features"], labels, strict=True):
        props = dict(f.get("properties") or {})
        props["cluster_id"] = renumber.get(label, -1)
        features.append({"type": "Feature", "geometry": f["geometry"], "properties": props})
    return {"result": {"type": "FeatureCollection", "srid": fc.get("srid", 4326), "features": features}}
