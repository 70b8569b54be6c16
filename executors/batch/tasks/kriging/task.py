"""Ordinary kriging of point values at target points (pykrige OrdinaryKriging)."""

import numpy as np
from pykrige.ok import OrdinaryKriging


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
    model = inputs.get("variogram_model") or "linear"
    try:
        xy = _points(samples, "features")
        txy = _points(targets, "targets")
        z = np.asarray([float(f["properties"][field]) for f in samples["features"]])
    except ValueError as exc:
        raise ctx.InvalidInput(str(exc)) from exc
    except (KeyError, TypeError) as exc:
        raise ctx.InvalidInput(f"every sample needs a numeric property {field!r}") from exc
    if len(z) < 3:
        raise ctx.InvalidInput("ordinary kriging needs at least 3 samples")
    params = None
    if model == "linear" and inputs.get("slope") is not None:
        params = {"slope": float(inputs["slope"]), "nugget": float(inputs.get("nugget") or 0.0)}
    ctx.progress(10, f"fitting a {model} variogram to {len(z)} samples")
    ok = OrdinaryKriging(xy[:, 0], xy[:, 1], z, variogram_model=model, variogram_parameters=params)
    ctx.progress(50, "variogram fitted")
    values, variances = ok.execute("points", txy[:, 0], txy[:, 1])
    ctx.message("info", f"variogram {model}: " + ", ".join(f"{p:.6g}" for p in ok.variogram_model_parameters))
    features = []
    for f, v, s2 in zip(targets["features"], np.asarray(values), np.asarray(variances), strict=True):
        props = dict(f.get("properties") or {})
        props["value"] = float(v)
        props["variance"] = float(s2)
        features.append({"type": "Feature", "geometry": f["geometry"], "properties": props})
    return {"result": {"type": "FeatureCollection", "srid": targets.get("srid", 4326), "features": features}}
