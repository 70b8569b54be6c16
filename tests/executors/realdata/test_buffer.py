"""Buffers of real features, measured on the ground with pyproj independently."""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Geod

from tests.executors.realdata.datasets import (
    Layer,
    aeqd,
    collection,
    result_geometries,
    run,
    to_lonlat,
    transform,
)

GEOD = Geod(ellps="WGS84")
FIFTY_M = {"value": 50, "unit": "meter"}


def _ground_radii(centres_lonlat: np.ndarray, buffers_lonlat: np.ndarray) -> np.ndarray:
    """Per buffer: (min, max) geodesic distance from its centre to its boundary vertices."""
    out = np.empty((len(centres_lonlat), 2))
    for i, (centre, buf) in enumerate(zip(centres_lonlat, buffers_lonlat, strict=True)):
        ring = shapely.get_coordinates(buf.exterior)
        _, _, d = GEOD.inv(
            np.full(len(ring), centre.x), np.full(len(ring), centre.y), ring[:, 0], ring[:, 1]
        )
        out[i] = d.min(), d.max()
    return out


def _check_point_buffers(points: Layer, result: dict, srid: int) -> np.ndarray:
    assert result["srid"] == srid
    buffers = result_geometries(result)
    assert len(buffers) == len(points)
    assert [f["properties"] for f in result["features"]] == points.properties
    assert [f["id"] for f in result["features"]] == points.ids
    assert set(shapely.get_type_id(buffers).tolist()) == {3}
    assert shapely.is_valid(buffers).all()
    assert all(len(b.exterior.coords) == 33 for b in buffers)  # 4 * quad_segs + 1
    return buffers


def test_geodesic_buffer_of_cholera_deaths_is_50_m_on_the_ground(deaths: Layer):
    """Web Mercator input, method geodesic: every boundary vertex 50 m (± 0.5 %) from its
    death by Geod.inv after transforming both to lon/lat with pyproj."""
    result = run(
        "buffer", {"features": deaths.collection, "distance": FIFTY_M, "method": "geodesic"}
    )
    buffers = _check_point_buffers(deaths, result, 3857)
    assert shapely.contains(buffers, deaths.geometries).all()
    radii = _ground_radii(deaths.lonlat(), to_lonlat(buffers, 3857))
    np.testing.assert_allclose(radii, 50.0, rtol=0.005)


def test_buffer_of_cholera_deaths_in_lon_lat_is_50_m_on_the_ground(deaths: Layer):
    """The same deaths given in EPSG:4326 (transformed by pyproj, not by Honua), default
    method: 50 m on the ground, output in lon/lat."""
    lonlat = deaths.lonlat()
    result = run("buffer", {"features": collection(lonlat, 4326, deaths.ids), "distance": FIFTY_M})
    assert result["srid"] == 4326
    buffers = result_geometries(result)
    assert shapely.contains(buffers, lonlat).all()
    np.testing.assert_allclose(_ground_radii(lonlat, buffers), 50.0, rtol=0.005)


def test_default_buffer_of_web_mercator_data_is_50_m_on_the_ground(deaths: Layer):
    """Method auto on Web Mercator data (buffer.yaml: ground distances for lon/lat and Web
    Mercator input): every boundary vertex 50 m (± 0.5 %) from its death by Geod.inv, the
    same polygons as method geodesic. 50 units of the EPSG:3857 plane would be only
    50·cos φ ≈ 31 m on the ground in Soho (φ ≈ 51.51°): that is what method planar gives."""
    result = run("buffer", {"features": deaths.collection, "distance": FIFTY_M})
    buffers = _check_point_buffers(deaths, result, 3857)
    assert shapely.contains(buffers, deaths.geometries).all()
    lonlat = deaths.lonlat()
    np.testing.assert_allclose(_ground_radii(lonlat, to_lonlat(buffers, 3857)), 50.0, rtol=0.005)
    geodesic = result_geometries(
        run("buffer", {"features": deaths.collection, "distance": FIFTY_M, "method": "geodesic"})
    )
    assert shapely.equals_exact(buffers, geodesic, 0.0).all()

    planar = run("buffer", {"features": deaths.collection, "distance": FIFTY_M, "method": "planar"})
    planar_buffers = _check_point_buffers(deaths, planar, 3857)
    for point, buf in zip(deaths.geometries, planar_buffers, strict=True):
        ring = shapely.get_coordinates(buf.exterior)
        np.testing.assert_allclose(
            np.hypot(ring[:, 0] - point.x, ring[:, 1] - point.y), 50.0, rtol=1e-9
        )
    radii = _ground_radii(lonlat, to_lonlat(planar_buffers, 3857))
    expected = 50.0 * np.cos(np.radians(shapely.get_y(lonlat)))
    np.testing.assert_allclose(radii[:, 0], expected, rtol=0.005)
    np.testing.assert_allclose(radii[:, 1], expected, rtol=0.005)


def test_geodesic_buffer_of_georgia_counties_in_utm_is_1_km_on_the_ground(georgia: Layer):
    """UTM 16N input stretched up to 1.0045 at Georgia's east edge, method geodesic: the
    boundary of each county's 1 km buffer is 1 km from the county on the ground, measured in
    an azimuthal equidistant frame centred on the county.

    GEOS simplifies a polygon's boundary by 1 % of the distance before offsetting it
    (BufferParameters simplify factor 0.01), so a vertex may come up to 1 % short; the
    farthest vertex of every county is 1 km within 0.1 % (a planar buffer in the UTM plane
    would be 0.45 % short in the east).
    """
    d = 1000.0
    result = run(
        "buffer",
        {
            "features": georgia.collection,
            "distance": {"value": 1, "unit": "kilometer"},
            "method": "geodesic",
        },
    )
    assert result["srid"] == georgia.srid
    buffers = result_geometries(result)
    assert shapely.is_valid(buffers).all()
    assert shapely.contains(buffers, georgia.geometries).all()
    counties = georgia.lonlat()
    buffers = to_lonlat(buffers, georgia.srid)
    centres = shapely.centroid(counties)
    lows, highs = [], []
    for county, buf, centre in zip(counties, buffers, centres, strict=True):
        tr = aeqd(centre.x, centre.y)
        rings = shapely.get_exterior_ring(shapely.get_parts(transform(buf, tr)))
        vertices = shapely.points(shapely.get_coordinates(rings))
        dist = shapely.distance(vertices, transform(county, tr))
        lows.append(dist.min())
        highs.append(dist.max())
    assert min(lows) >= d * 0.99
    np.testing.assert_allclose(highs, d, rtol=0.001)


def test_dissolved_geodesic_buffer_is_the_50_m_reach_of_the_deaths(deaths: Layer):
    """One polygon for all deaths: every death inside, and every boundary vertex (holes
    included) 50 m from its nearest death (and so no nearer to any), by brute-force Geod.inv
    over all vertex x death pairs."""
    result = run(
        "buffer",
        {
            "features": deaths.collection,
            "distance": FIFTY_M,
            "method": "geodesic",
            "dissolve": True,
        },
    )
    (merged,) = result_geometries(result)
    assert result["srid"] == 3857 and merged.is_valid
    assert shapely.contains(merged, deaths.geometries).all()
    vertices = shapely.get_coordinates(to_lonlat(np.array([merged.boundary], dtype=object), 3857))
    centres = shapely.get_coordinates(deaths.lonlat())
    lon0 = np.repeat(vertices[:, 0], len(centres))
    lat0 = np.repeat(vertices[:, 1], len(centres))
    _, _, d = GEOD.inv(
        lon0, lat0, np.tile(centres[:, 0], len(vertices)), np.tile(centres[:, 1], len(vertices))
    )
    nearest = np.asarray(d).reshape(len(vertices), len(centres)).min(axis=1)
    # Vertices where two circles cross lie on a chord of each 32-gon: at least the chord's
    # distance d·cos(π/32) (-0.48 %) from the centre; all others are on the circles.
    assert nearest.max() <= 50.0 * (1 + 1e-6)
    assert nearest.min() >= 50.0 * np.cos(np.pi / 32) * (1 - 1e-6)
