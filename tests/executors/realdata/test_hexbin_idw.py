"""Hexbin (sum of price) and IDW (price surface) over Baltimore's 211 house sales, both tiers,
against shapely point-in-polygon counts and a numpy IDW over the full distance matrix."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from executors.base import ExecutionContext
from executors.inprocess.executor import InProcessExecutor
from executors.postgis.executor import PostGISExecutor
from tests.executors.realdata.datasets import Layer, result_geometries, result_values

pytestmark = pytest.mark.django_db

TIERS = {"inprocess": InProcessExecutor, "postgis": PostGISExecutor}


def _run(tier: str, handler: str, inputs: dict) -> dict:
    ctx = ExecutionContext(run_id="t", process_id=handler, handler=handler)
    return TIERS[tier]().execute(handler, inputs, ctx)["result"]


@pytest.mark.parametrize("tier", TIERS)
def test_hexbin_counts_and_price_sums_match_point_in_polygon(baltim: Layer, tier):
    size = 5.123456789  # grid units; edges fall between the integer sale coordinates
    out = _run(tier, "hexbin", {"features": baltim.collection, "cell_size": {"value": size, "unit": "meter"},
                                "sum_field": "PRICE"})
    hexes = result_geometries(out)
    counts = result_values(out, "count")
    sums = result_values(out, "sum")
    means = result_values(out, "mean")
    prices = np.array([p["PRICE"] for p in baltim.properties], dtype=float)
    points = baltim.geometries
    pi, hi = shapely.STRtree(hexes).query(points, predicate="within")
    assert np.array_equal(np.sort(pi), np.arange(len(points)))  # each sale in exactly one
    owner = np.empty(len(points), dtype=np.int64)
    owner[pi] = hi
    assert np.array_equal(counts, np.bincount(owner, minlength=len(hexes)))
    want = np.bincount(owner, weights=prices, minlength=len(hexes))
    assert np.allclose(sums, want, rtol=1e-12, atol=0)
    assert np.allclose(means, want / counts, rtol=1e-12)
    assert counts.sum() == 211 and sums.sum() == pytest.approx(prices.sum(), rel=1e-12)
    assert np.allclose(shapely.area(hexes), 3 * np.sqrt(3) / 2 * size**2, rtol=1e-12)
    assert out["srid"] == baltim.srid


def _reference(samples, values, centres, power, k, radius):
    d = np.sqrt(((centres[:, None, :] - samples[None, :, :]) ** 2).sum(axis=2))
    out, decided = [], []
    for row in d:
        order = np.argsort(row, kind="stable")
        # A tie at the k-th distance makes the chosen neighbours ambiguous: skip such cells.
        decided.append(len(row) <= k or row[order[k - 1]] != row[order[k]])
        near = order[:k]
        near = near[row[near] <= radius]
        if len(near) == 0:
            out.append(np.nan)
        elif row[near[0]] == 0:
            out.append(values[near][row[near] == 0].mean())
        else:
            w = 1.0 / row[near] ** power
            out.append((w * values[near]).sum() / w.sum())
    return np.array(out), np.array(decided)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize(("k", "radius"), [(211, 12.0), (12, 1e9)])
def test_idw_price_surface_matches_a_full_distance_matrix(baltim: Layer, tier, k, radius):
    inputs = {"features": baltim.collection, "value_field": "PRICE", "cell_size": {"value": 4, "unit": "meter"},
              "power": 2, "max_neighbors": k, "search_radius": {"value": radius, "unit": "meter"}}
    out = _run(tier, "idw", inputs)
    cells = result_geometries(out)
    got = result_values(out, "value")
    xy = shapely.get_coordinates(baltim.geometries)
    prices = np.array([p["PRICE"] for p in baltim.properties], dtype=float)
    # The grid: 4-unit cells from the sales' north-west corner, covering their extent.
    (xmin, ymin), (xmax, ymax) = xy.min(axis=0), xy.max(axis=0)
    cols, rows = int(np.ceil((xmax - xmin) / 4)), int(np.ceil((ymax - ymin) / 4))
    assert len(cells) == cols * rows
    assert cells[0].equals(shapely.box(xmin, ymax - 4, xmin + 4, ymax))
    centres = shapely.get_coordinates(shapely.centroid(cells))
    want, decided = _reference(xy, prices, centres, 2.0, k, radius)
    assert decided.sum() > 0.5 * len(cells)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = decided & ~np.isnan(want)
    assert np.allclose(got[ok], want[ok], rtol=1e-9, atol=0)
    if radius < 100:
        assert np.isnan(got).any() and (~np.isnan(got)).any()
    # Cells whose centre is a sale get that sale's price (the mean of the sales there).
    at_sale = [c for c in range(len(cells)) if (np.hypot(*(xy - centres[c]).T) == 0).any()]
    for c in at_sale:
        assert got[c] == prices[np.hypot(*(xy - centres[c]).T) == 0].mean()
