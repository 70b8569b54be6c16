"""Inverse distance weighted interpolation of point values at target points (scipy cKDTree)."""

import numpy as np
from scipy.spatial import cKDTree


def _points(fc, what):
    xy = []
    for f in fc.get("features") or []:
        g = f.get("geometry") or {}
        if g.get("type") != "Point":
            raise ValueError(f"{what}: every feature must be a Point")
        xy.append(g["coordinates"][:2])
    return np.asarray(xy, dtype=float).reshape(-1, 2)


def run(inputs, ctx):
    samples, targets = inputs["features"], inputs["targets"]
    field = inputs["field"]
    power = float(inputs.get("power") or 2.0)
    k = int(inputs.get("neighbors") or 12)
    try:
        xy = _points(samples, "features")
        txy = _points(targets, "targets")
    except ValueError as exc:
        raise ctx.InvalidInput(str(exc)) from exc
    try:
        z = np.asarray([float(f["properties"][field]) for f in samples["features"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise ctx.InvalidInput(f"every sample needs a numeric property {field!r}") from exc
    if len(z) == 0:
        raise ctx.InvalidInput("no sample points")
    k = min(k, len(z))
    ctx.progress(10, f"{len(z)} samples, {len(txy)} targets")
    dist, idx = cKDTree(xy).query(txy, k=k)
    dist, idx = dist.reshape(len(txy), k), idx.reshape(len(txy), k)
    with np.errstate(divide="ignore"):
        w = 1.0 / dist**power
    exact = dist[:, 0] == 0
    w[exact] = 0.0
    w[exact, 0] = 1.0
    values = (w * z[idx]).sum(axis=1) / w.sum(axis=1)
    ctx.progress(90, "interpolated")
    features = []
    for f, v in zip(targets["features"], values, strict=True):
        props = dict(f.get("properties") or {})
        props["value"] = float(v)
        features.append({"type": "Feature", "geometry": f["geometry"], "properties": props})
    return {"result": {"type": "FeatureCollection", "srid": targets.get("srid", 4326), "features": features}}
