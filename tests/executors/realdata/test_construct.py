"""Convex hulls of real point and polygon layers vs shapely's hull of the same coordinates."""

from __future__ import annotations

import shapely

from tests.executors.realdata.datasets import Layer, result_geometries, run


def _same_polygon(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    """Vertex for vertex (start and orientation aside)."""
    return bool(shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tolerance=0.0))


def test_convex_hull_of_baltimore_house_sales(baltim: Layer):
    """dissolve: one polygon containing every sale (on or inside the boundary), equal vertex
    for vertex to shapely's hull of the 211 points, its corners being sale locations.
    (Planar; the coordinates are the study's unreferenced grid, see datasets.py.)"""
    points = baltim.given
    result = run("convex_hull", {"features": baltim.collection, "dissolve": True})
    assert result["srid"] == baltim.srid
    (hull,) = result_geometries(result)
    reference = shapely.MultiPoint(shapely.get_coordinates(points)).convex_hull
    assert hull.geom_type == "Polygon" and hull.is_valid
    assert shapely.covers(hull, points).all()
    assert _same_polygon(hull, reference)
    corners = {tuple(c) for c in shapely.get_coordinates(hull)}
    assert corners <= {tuple(c) for c in shapely.get_coordinates(points)}
    assert shapely.touches(hull, points).sum() >= len(corners)


def test_convex_hull_of_cholera_deaths(deaths: Layer):
    """Web Mercator points: the hull is planar in the input CRS, as documented."""
    points = deaths.given
    result = run("convex_hull", {"features": deaths.collection, "dissolve": True})
    (hull,) = result_geometries(result)
    assert result["srid"] == 3857
    assert shapely.covers(hull, points).all()
    assert _same_polygon(
        hull, shapely.convex_hull(shapely.MultiPoint(shapely.get_coordinates(points)))
    )


def test_convex_hull_of_each_columbus_neighbourhood(columbus: Layer):
    result = run("convex_hull", {"features": columbus.collection})
    hulls = result_geometries(result)
    assert [f["properties"] for f in result["features"]] == columbus.properties
    for hull, polygon in zip(hulls, columbus.given, strict=True):
        assert _same_polygon(hull, shapely.MultiPoint(shapely.get_coordinates(polygon)).convex_hull)
        assert hull.covers(polygon)
    assert (shapely.area(hulls) >= shapely.area(columbus.given) * (1 - 1e-12)).all()
