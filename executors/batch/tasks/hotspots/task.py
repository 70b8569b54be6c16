"""Hot-spot analysis: Getis-Ord Gi* (esda.G_Local, star) on distance-band or kNN weights."""

import numpy as np
from esda.getisord import G_Local
from libpysal.weights import KNN, DistanceBand
from scipy.stats import norm


def _xy(geometry):
    t, c = geometry.get("type"), geometry.get("coordinates")
    if t == "Point":
        return c[:2]
    pts = np.asarray(
        [p[:2] for ring in (c if t == "Polygon" else [r for poly in c for r in poly]) for p in ring]
        if t in ("Polygon", "MultiPolygon") else [p[:2] for p in c], dtype=float
    )
    return pts.mean(axis=0).tolist()


def _label(z, p):
    for level, name in ((0.01, "99"), (0.05, "95"), (0.10, "90")):
        if p <= level:
            return f"{'Hot' if z > 0 else 'Cold'} spot - {name}% confidence"
    return "Not significant"


def run(inputs, ctx):
    fc = inputs["features"]
    field = inputs["field"]
    method = inputs.get("weights") or "distance_band"
    try:
        xy = np.asarray([_xy(f["geometry"]) for f in fc["features"]], dtype=float)
        y = np.asarray([float(f["properties"][field]) for f in fc["features"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise ctx.InvalidInput(f"every feature needs a geometry and a numeric property {field!r}") from exc
    if len(y) < 3:
        raise ctx.InvalidInput("hot-spot analysis needs at least 3 features")
    if method == "knn":
        w = KNN(xy, k=int(inputs.get("k") or 8))
    else:
        distance = inputs.get("distance")
        if isinstance(distance, dict):
            distance = distance.get("value")
        if distance is None:
            raise ctx.InvalidInput("distance_band weights need a distance")
        w = DistanceBand(xy, threshold=float(distance), binary=True, silence_warnings=True)
    ctx.progress(30, f"weights: {method}, mean {w.mean_neighbors:.2f} neighbours")
    g = G_Local(y, w, transform="B", star=True, permutations=0)
    z = np.asarray(g.Zs, dtype=float)
    p = 2.0 * norm.sf(np.abs(z))
    features = []
    for f, zi, pi in zip(fc["features"], z, p, strict=True):
        props = dict(f.get("properties") or {})
        props.update({"gi_z": float(zi), "gi_p": float(pi), "hotspot": _label(zi, pi)})
        features.append({"type": "Feature", "geometry": f["geometry"], "properties": props})
    return {"result": {"type": "FeatureCollection", "srid": fc.get("srid", 4326), "features": features}}
