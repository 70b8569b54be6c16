"""Reprojection of real layers vs pyproj directly, and round trips."""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer

from tests.executors.realdata.datasets import Layer, result_geometries, run


def _vertices(geoms: np.ndarray) -> np.ndarray:
    return shapely.get_coordinates(geoms)


def test_georgia_utm_to_lon_lat_and_back_round_trips(georgia: Layer):
    """EPSG:26916 -> 4326 -> 26916 through the handler: same features, same vertex counts,
    every one of the 14,610 vertices back within 1e-6 m."""
    there = run("project", {"features": georgia.collection, "target_srid": {"srid": 4326}})
    back = run("project", {"features": there, "target_srid": {"srid": georgia.srid}})
    assert (there["srid"], back["srid"]) == (4326, georgia.srid)
    assert [f["properties"] for f in back["features"]] == georgia.properties
    assert [f["id"] for f in back["features"]] == georgia.ids
    start, end = georgia.given, result_geometries(back)
    np.testing.assert_array_equal(
        shapely.get_num_coordinates(end), shapely.get_num_coordinates(start)
    )
    assert len(_vertices(start)) == 14_610
    assert np.abs(_vertices(end) - _vertices(start)).max() < 1e-6


def test_georgia_in_lon_lat_matches_pyproj(georgia: Layer):
    """Every vertex equals pyproj's own EPSG:26916 -> 4326 transformation (always_xy), within
    1e-9 degree (0.1 mm), and a few named ones are spelled out."""
    result = run("project", {"features": georgia.collection, "target_srid": {"srid": 4326}})
    got = _vertices(result_geometries(result))
    src = _vertices(georgia.given)
    tr = Transformer.from_crs(georgia.srid, 4326, always_xy=True)
    lon, lat = tr.transform(src[:, 0], src[:, 1])
    np.testing.assert_allclose(got, np.column_stack([lon, lat]), rtol=0, atol=1e-9)
    for i in (0, len(src) // 3, len(src) // 2, len(src) - 1):
        assert np.allclose(got[i], tr.transform(*src[i]), rtol=0, atol=1e-9)
    assert shapely.is_valid(result_geometries(result)).all()


def test_cholera_deaths_to_lon_lat_match_pyproj(deaths: Layer):
    result = run("project", {"features": deaths.collection, "target_srid": {"srid": 4326}})
    got = _vertices(result_geometries(result))
    lon, lat = Transformer.from_crs(3857, 4326, always_xy=True).transform(
        *_vertices(deaths.given).T
    )
    np.testing.assert_allclose(got, np.column_stack([lon, lat]), rtol=0, atol=1e-12)
