"""The in-process voronoi and the postgis tier's snap seeds alike: same sites, same cells."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from executors.base import ExecutionContext
from executors.inprocess.executor import InProcessExecutor
from executors.postgis.executor import PostGISExecutor
from tests.executors.postgis.support import fc, shape

# Two records of one address one ULP (5.5e-12 m) apart, as records 211 and 212 of Snow's
# SohoPeople.shp, and three more seeds around them (EPSG:3857).
ONE_ULP_APART = [
    (-15103.483471566631, 6712538.59351482),
    (-15103.483471566626, 6712538.59351482),
    (-15000.0, 6712600.0),
    (-15200.0, 6712600.0),
    (-15100.0, 6712400.0),
]


def _ctx() -> ExecutionContext:
    return ExecutionContext(run_id="r", process_id="voronoi", handler="voronoi")


def _both(inputs: dict) -> tuple[list[dict], list[dict]]:
    ours = InProcessExecutor().execute("voronoi", inputs, _ctx())["result"]["features"]
    theirs = PostGISExecutor().execute("voronoi", inputs, _ctx())["result"]["features"]
    return ours, theirs


def _same_cells(ours: list[dict], theirs: list[dict]) -> None:
    """Feature by feature: same id and properties, and the same cell up to GEOS's rounding
    (vertices within 1e-6 m; the two tiers run different GEOS versions)."""
    assert [f["id"] for f in ours] == [f["id"] for f in theirs]
    assert [f["properties"] for f in ours] == [f["properties"] for f in theirs]
    a = np.array([shape(f) for f in ours], dtype=object)
    b = np.array([shape(f) for f in theirs], dtype=object)
    assert shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), 1e-6).all()
    assert (shapely.area(shapely.symmetric_difference(a, b)) <= 1e-9 * shapely.area(a)).all()


def _sharing(features: list[dict]) -> list[int]:
    """For each feature, the first feature with the same cell (bit for bit)."""
    first: dict[bytes, int] = {}
    cells = [shapely.to_wkb(shape(f)) for f in features]
    return [first.setdefault(c, i) for i, c in enumerate(cells)]


@pytest.mark.django_db
def test_the_one_ulp_reproducer_gives_the_same_cells_on_both_tiers():
    inputs = {"features": fc(list(shapely.points(ONE_ULP_APART)), srid=3857)}
    ours, theirs = _both(inputs)
    assert len(ours) == len(theirs) == 5
    assert _sharing(ours) == _sharing(theirs) == [0, 0, 2, 3, 4]
    _same_cells(ours, theirs)
    # Here the cells are identical, vertex for vertex (up to ring start and orientation).
    a = shapely.normalize(np.array([shape(f) for f in ours], dtype=object))
    b = shapely.normalize(np.array([shape(f) for f in theirs], dtype=object))
    assert shapely.equals_exact(a, b, 0.0).all()


@pytest.mark.django_db
@pytest.mark.parametrize("tolerance", [None, {"value": 30, "unit": "centimeter"}])
def test_random_seeds_with_near_duplicates_snap_alike(tolerance):
    """400 seeds, a quarter of them repeated within one ULP, a few 1e-10 m and 0.2 m away:
    both tiers merge the same seeds and give the same cells (by default the ULP and 1e-10 m
    repeats merge; with a 30 cm tolerance the 0.2 m ones too)."""
    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 2_000, (400, 2)) + [-15_000.0, 6_712_000.0]
    ulp = xy[:100].copy()
    ulp[:, 0] = np.nextafter(ulp[:, 0], np.inf)
    near = xy[100:110] + [1e-10, 0.0]
    apart = xy[110:120] + [0.2, 0.0]
    seeds = np.vstack([xy, ulp, near, apart])
    inputs = {"features": fc(list(shapely.points(seeds)), srid=3857)}
    if tolerance is not None:
        inputs["tolerance"] = tolerance
    ours, theirs = _both(inputs)
    sharing = _sharing(ours)
    assert sharing == _sharing(theirs)
    assert sharing[400:510] == list(range(110))
    merged = list(range(110, 120)) if tolerance else list(range(510, 520))
    assert sharing[510:520] == merged
    _same_cells(ours, theirs)
