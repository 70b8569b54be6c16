"""The starter tasks against independent computations on small data."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from scipy.stats import norm
from shapely.geometry import Point

from executors.base import InvalidInput


def _fc(points, values=None, field="v", srid=32618):
    return {
        "type": "FeatureCollection",
        "srid": srid,
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
             "properties": ({field: float(values[i])} if values is not None else {"i": i})}
            for i, (x, y) in enumerate(points)
        ],
    }


RNG = np.random.default_rng(7)
SAMPLES = RNG.uniform(0, 100, size=(25, 2))
VALUES = np.sin(SAMPLES[:, 0] / 20) * 10 + SAMPLES[:, 1] / 10
TARGETS = np.array([[10.0, 10.0], [50.0, 50.0], [75.5, 20.25], SAMPLES[3]])


def test_idw_matches_the_formula(batch, batch_tasks, recorder):
    out = batch.execute(
        "idw",
        {"features": _fc(SAMPLES, VALUES), "value_field": "v", "cell_size": {"value": 10, "unit": "meter"},
         "power": 2, "max_neighbors": 25},
        recorder.ctx("idw"),
    )
    cells = out["result"]["features"]
    (xmin, ymin), (xmax, ymax) = SAMPLES.min(axis=0), SAMPLES.max(axis=0)
    cols, rows = int(np.ceil((xmax - xmin) / 10)), int(np.ceil((ymax - ymin) / 10))
    assert len(cells) == cols * rows
    assert [(f["properties"]["grid_column"], f["properties"]["grid_row"]) for f in cells] == [
        (c, r) for r in range(rows) for c in range(cols)
    ]
    assert cells[0]["geometry"]["coordinates"][0][0] == pytest.approx([xmin, ymax - 10])  # north-west first
    centres = np.array([[xmin + (c + 0.5) * 10, ymax - (r + 0.5) * 10] for r in range(rows) for c in range(cols)])
    got = np.array([f["properties"]["value"] for f in cells])
    d = np.hypot(*(centres[:, None, :] - SAMPLES[None, :, :]).transpose(2, 0, 1))
    w = 1 / d**2
    np.testing.assert_allclose(got, (w * VALUES).sum(axis=1) / w.sum(axis=1), rtol=1e-9)
    assert out["result"]["srid"] == 32618
    assert (10, f"25 samples, {cols} x {rows} cells") in recorder.progress


def test_kriging_matches_an_independent_solve(batch, batch_tasks, recorder):
    slope, nugget = 0.8, 0.0
    out = batch.execute(
        "kriging",
        {"features": _fc(SAMPLES, VALUES), "targets": _fc(TARGETS[:3]), "field": "v",
         "variogram_model": "linear", "slope": slope, "nugget": nugget},
        recorder.ctx("kriging"),
    )
    n = len(SAMPLES)

    def gamma(h):
        return slope * h + nugget

    dist = np.hypot(*(SAMPLES[:, None, :] - SAMPLES[None, :, :]).transpose(2, 0, 1))
    a = np.ones((n + 1, n + 1))
    a[:n, :n] = gamma(dist)
    np.fill_diagonal(a[:n, :n], 0.0)
    a[n, n] = 0.0
    for feature, target in zip(out["result"]["features"], TARGETS[:3], strict=True):
        b = np.ones(n + 1)
        b[:n] = gamma(np.hypot(*(SAMPLES - target).T))
        sol = np.linalg.solve(a, b)
        w, mu = sol[:n], sol[n]
        assert feature["properties"]["value"] == pytest.approx(float(w @ VALUES), rel=1e-8)
        assert feature["properties"]["variance"] == pytest.approx(float(w @ b[:n] + mu), rel=1e-6)


def test_dbscan_hand_checked_and_against_neighbour_counts(batch, batch_tasks, recorder):
    # Two tight groups, a bridge-less gap and two loners; eps 1.5, min 3 (the point counts itself).
    pts = [(0, 0), (1, 0), (0, 1), (1, 1), (10, 10), (11, 10), (10, 11), (30, 30), (5, 5), (11.5, 11)]
    out = batch.execute(
        "dbscan", {"features": _fc(pts), "eps": 1.5, "min_points": 3}, recorder.ctx("dbscan")
    )
    ids = [f["properties"]["cluster_id"] for f in out["result"]["features"]]
    assert ids == [0, 0, 0, 0, 1, 1, 1, -1, -1, 1]
    geoms = [Point(p) for p in pts]
    counts = np.array([sum(g.distance(h) <= 1.5 for h in geoms) for g in geoms])
    core = counts >= 3
    for i, cid in enumerate(ids):
        if core[i]:
            assert cid >= 0  # every core point is clustered
        elif cid == -1:  # noise: no core point within eps
            assert not any(core[j] and geoms[i].distance(geoms[j]) <= 1.5 for j in range(len(pts)))


def test_dbscan_real_points_match_numpy_core_counts(batch, batch_tasks, recorder):
    pts = RNG.normal(0, 5, size=(200, 2))
    out = batch.execute("dbscan", {"features": _fc(pts), "eps": {"value": 1.0, "unit": "meter"},
                                   "min_points": 4}, recorder.ctx("dbscan"))
    ids = np.array([f["properties"]["cluster_id"] for f in out["result"]["features"]])
    d = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    core = (d <= 1.0).sum(axis=1) >= 4
    assert (ids[core] >= 0).all()
    noise = ids == -1
    assert not (noise[:, None] & core[None, :] & (d <= 1.0)).any()
    for a, b in zip(*np.nonzero(core[:, None] & core[None, :] & (d <= 1.0)), strict=True):
        assert ids[a] == ids[b]  # core neighbours share a cluster


def test_getis_ord_gi_star_matches_the_textbook_formula(batch, batch_tasks, recorder):
    pts = RNG.uniform(0, 10, size=(40, 2))
    y = RNG.normal(10, 2, size=40) + (pts[:, 0] > 7) * 6  # a hot east
    out = batch.execute(
        "hotspots", {"features": _fc(pts, y), "field": "v", "weights": "distance_band", "distance": 2.5},
        recorder.ctx("hotspots"),
    )
    got = np.array([f["properties"]["gi_z"] for f in out["result"]["features"]])
    n = len(y)
    d = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    w = (d <= 2.5).astype(float)  # Gi*: i is its own neighbour
    xbar = y.mean()
    s = np.sqrt((y**2).mean() - xbar**2)
    wsum = w.sum(axis=1)
    num = w @ y - xbar * wsum
    den = s * np.sqrt((n * (w**2).sum(axis=1) - wsum**2) / (n - 1))
    np.testing.assert_allclose(got, num / den, rtol=1e-6)
    p = np.array([f["properties"]["gi_p"] for f in out["result"]["features"]])
    np.testing.assert_allclose(p, 2 * norm.sf(np.abs(num / den)), rtol=1e-6)
    labels = {f["properties"]["hotspot"] for f in out["result"]["features"]}
    assert any(lbl.startswith("Hot spot") for lbl in labels)


def _geotiff(red, nir, nodata=0):
    buf = io.BytesIO()
    with rasterio.MemoryFile() as mem:
        with mem.open(driver="GTiff", width=red.shape[1], height=red.shape[0], count=3, dtype="uint16",
                      crs="EPSG:32633", transform=from_origin(500000, 4100000, 30, 30), nodata=nodata) as dst:
            dst.write(np.full_like(red, 7), 1)  # a band that is neither
            dst.write(red, 2)
            dst.write(nir, 3)
        buf.write(mem.read())
    return buf.getvalue()


def test_ndvi_matches_numpy_and_keeps_the_grid(batch, batch_tasks, recorder):
    red = RNG.integers(1, 3000, size=(20, 30)).astype("uint16")
    nir = RNG.integers(1, 6000, size=(20, 30)).astype("uint16")
    red[0, 0] = 0  # nodata in red
    nir[5, 7] = 0  # nodata in nir
    data = _geotiff(red, nir)
    out = batch.execute(
        "ndvi",
        {"raster": {"value": base64.b64encode(data).decode(), "media_type": "image/tiff", "encoding": "base64",
                    "name": "scene.tif"}, "red_band": 2, "nir_band": 3},
        recorder.ctx("ndvi"),
    )
    result = out["ndvi"]
    assert result["media_type"].startswith("image/tiff") and result["encoding"] == "base64"
    with rasterio.MemoryFile(base64.b64decode(result["value"])) as mem, mem.open() as ds:
        assert ds.dtypes == ("float32",) and ds.nodata == -9999.0
        assert ds.crs.to_epsg() == 32633 and ds.transform == from_origin(500000, 4100000, 30, 30)
        got = ds.read(1)
    r, n = red.astype(float), nir.astype(float)
    expected = ((n - r) / (n + r)).astype("float32")
    expected[0, 0] = expected[5, 7] = -9999.0
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_ndvi_bad_band_is_invalid_input(batch, batch_tasks, recorder):
    data = _geotiff(np.ones((2, 2), "uint16"), np.ones((2, 2), "uint16"))
    with pytest.raises(InvalidInput) as info:
        batch.execute("ndvi", {"raster": {"value": base64.b64encode(data).decode(), "encoding": "base64",
                                          "media_type": "image/tiff"}, "red_band": 1, "nir_band": 9},
                      recorder.ctx("ndvi"))
    assert "band 9 does not exist" in info.value.message
