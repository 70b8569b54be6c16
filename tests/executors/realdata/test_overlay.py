"""Union (dissolve) of real polygon layers vs shapely's own union and area bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from tests.executors.realdata.datasets import Layer, result_geometries, run


def _overlap_area(geoms: np.ndarray) -> float:
    """Total area shared by pairs of distinct polygons (an STRtree over all pairs)."""
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = left < right
    return float(shapely.area(shapely.intersection(geoms[left[pair]], geoms[right[pair]])).sum())


def _parts(geom: shapely.Geometry) -> int:
    return int(shapely.get_num_geometries(geom))


def test_union_of_columbus_neighbourhoods(columbus: Layer):
    """The 49 neighbourhoods tile without overlaps (checked with shapely), so the one dissolved
    polygon has their summed area; it is valid and has as many parts as shapely.union_all."""
    assert _overlap_area(columbus.geometries) == 0.0
    result = run("union", {"features": columbus.collection})
    assert result["srid"] == columbus.srid
    (merged,) = result_geometries(result)
    assert merged.is_valid
    reference = shapely.union_all(columbus.geometries)
    assert merged.geom_type == reference.geom_type == "Polygon"
    assert _parts(merged) == _parts(reference) == 1
    assert merged.area == pytest.approx(shapely.area(columbus.geometries).sum(), rel=1e-12)
    assert merged.symmetric_difference(reference).area < 1e-12 * reference.area
    assert shapely.covers(merged.buffer(1e-9), columbus.geometries).all()


def test_union_of_columbus_by_core_periphery(columbus: Layer):
    """dissolve_field CP (core 1 / periphery 0): one feature per value, each the union of its
    neighbourhoods (area = their sum; parts as shapely.union_all gives)."""
    result = run("union", {"features": columbus.collection, "dissolve_field": "CP"})
    merged = result_geometries(result)
    values = [f["properties"]["CP"] for f in result["features"]]
    assert sorted(values) == [0.0, 1.0]
    cp = np.array([p["CP"] for p in columbus.properties])
    for value, geom in zip(values, merged, strict=True):
        members = columbus.geometries[cp == value]
        reference = shapely.union_all(members)
        assert geom.is_valid
        assert geom.area == pytest.approx(shapely.area(members).sum(), rel=1e-12)
        assert _parts(geom) == _parts(reference)
        assert geom.symmetric_difference(reference).area < 1e-12 * reference.area


def test_union_of_georgia_counties(georgia: Layer):
    """159 counties, three enclosing another: the state comes out valid, with the summed
    county area and the parts and holes of shapely.union_all (the 1990 outlines leave two
    small gaps between counties and one county apart from the rest)."""
    assert _overlap_area(georgia.geometries) == 0.0
    result = run("union", {"features": georgia.collection})
    assert result["srid"] == georgia.srid
    (state,) = result_geometries(result)
    reference = shapely.union_all(georgia.geometries)
    assert state.is_valid
    assert _parts(state) == _parts(reference) == 2
    holes = shapely.get_num_interior_rings(shapely.get_parts(state)).sum()
    assert holes == shapely.get_num_interior_rings(shapely.get_parts(reference)).sum() == 2
    assert state.area == pytest.approx(shapely.area(georgia.geometries).sum(), rel=1e-12)
    assert state.symmetric_difference(reference).area < 1e-9 * reference.area
