"""Areas, lengths and nearest distances of real features vs pyproj / brute force."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod, Proj

from tests.executors.realdata.datasets import (
    BROAD_STREET_PUMP_LONLAT,
    GEORGIA_PUBLISHED_AREA_KM2,
    Layer,
    aeqd,
    result_values,
    run,
    transform,
)

GEOD = Geod(ellps="WGS84")


def _karney_area_perimeter(lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per geometry: Karney's geodesic area (m²; |exterior| - |holes| of each polygon part,
    whatever the ring orientation) and perimeter (m; every ring, holes included, as a
    polygon's boundary length is everywhere else in GIS)."""
    areas, perimeters = [], []
    for geom in lonlat:
        area = perimeter = 0.0
        for part in shapely.get_parts(geom):
            for k, ring in enumerate([part.exterior, *part.interiors]):
                ring_area, _ = GEOD.geometry_area_perimeter(shapely.Polygon(ring))
                area += abs(ring_area) if k == 0 else -abs(ring_area)
                perimeter += GEOD.geometry_length(ring)
        areas.append(area)
        perimeters.append(perimeter)
    return np.array(areas), np.array(perimeters)


def test_georgia_county_areas_are_geodesic(georgia: Layer):
    """Default method: each county's area (km²) equals Karney's geodesic area of the county
    transformed to lon/lat by pyproj; the 159 add up to Georgia's published land + water
    area (153,910 km²) within 2 % (the 1990 county outlines give 152,638 km², -0.8 %)."""
    result = run("areas", {"features": georgia.collection, "unit": "square_kilometer"})
    assert result["srid"] == georgia.srid
    assert [f["properties"]["AreaKey"] for f in result["features"]] == [
        p["AreaKey"] for p in georgia.properties
    ]
    got = result_values(result, "area")
    reference, _ = _karney_area_perimeter(georgia.lonlat())
    np.testing.assert_allclose(got, reference / 1e6, rtol=1e-5)
    assert got.sum() == pytest.approx(GEORGIA_PUBLISHED_AREA_KM2, rel=0.02)


def test_georgia_planar_areas_carry_the_utm_scale(georgia: Layer):
    """method planar: the area in the UTM 16N plane (shapely's shoelace), which is the
    ground area times the projection's areal scale k² at the county (pyproj's
    get_factors): 0.9996 at Georgia's west edge, 1.4 degrees east of the central meridian
    (87 W), up to 1.008 at its east edge, 6.2 degrees east."""
    planar = result_values(
        run("areas", {"features": georgia.collection, "method": "planar"}), "area"
    )
    np.testing.assert_allclose(planar, shapely.area(georgia.geometries), rtol=1e-12)
    lonlat = georgia.lonlat()
    ground, _ = _karney_area_perimeter(lonlat)
    centre = shapely.get_coordinates(shapely.point_on_surface(lonlat))
    scale = Proj(georgia.srid).get_factors(centre[:, 0], centre[:, 1]).areal_scale
    np.testing.assert_allclose(planar / ground, scale, rtol=2e-4)
    assert (planar / ground).min() < 1.0 < 1.006 < (planar / ground).max()


def test_georgia_county_perimeters_are_geodesic(georgia: Layer):
    """Perimeters (km) include the rings of the three counties that enclose another."""
    assert shapely.get_num_interior_rings(shapely.get_parts(georgia.geometries)).sum() == 3
    result = run("lengths", {"features": georgia.collection, "unit": "kilometer"})
    _, reference = _karney_area_perimeter(georgia.lonlat())
    np.testing.assert_allclose(result_values(result, "length"), reference / 1e3, rtol=1e-6)


def test_soho_street_lengths_are_geodesic(streets: Layer):
    """Each street's length equals Geod.geometry_length of the line in lon/lat; method
    planar gives the Web Mercator plane's length, ≈ ground / cos φ (within 0.5 %)."""
    geodesic = result_values(run("lengths", {"features": streets.collection}), "length")
    reference = np.array([GEOD.geometry_length(g) for g in streets.lonlat()])
    assert (reference > 0).all()
    np.testing.assert_allclose(geodesic, reference, rtol=1e-9)
    planar = result_values(
        run("lengths", {"features": streets.collection, "method": "planar"}), "length"
    )
    np.testing.assert_allclose(planar, shapely.length(streets.geometries), rtol=1e-12)
    lat = shapely.get_y(shapely.centroid(streets.lonlat()))
    np.testing.assert_allclose(planar * np.cos(np.radians(lat)), reference, rtol=0.005)


def _death_pump_matrix(deaths: Layer, pumps: Layer) -> np.ndarray:
    """Geodesic distance (m) of every death x pump pair, by Geod.inv on lon/lat."""
    a = shapely.get_coordinates(deaths.lonlat())
    b = shapely.get_coordinates(pumps.lonlat())
    _, _, d = GEOD.inv(
        np.repeat(a[:, 0], len(b)),
        np.repeat(a[:, 1], len(b)),
        np.tile(b[:, 0], len(a)),
        np.tile(b[:, 1], len(a)),
    )
    return np.asarray(d).reshape(len(a), len(b))


def test_distance_from_each_death_to_the_nearest_pump_is_geodesic(deaths: Layer, pumps: Layer):
    """Default method: distance and near_index/near_id equal the brute-force minimum over all
    13 pumps (every death's nearest pump is ahead of the second by > 0.5 m, so the index
    comparison is unambiguous)."""
    result = run("distance", {"features": deaths.collection, "overlay": pumps.collection})
    assert result["srid"] == 3857
    matrix = _death_pump_matrix(deaths, pumps)
    two = np.sort(matrix, axis=1)[:, :2]
    assert (two[:, 1] - two[:, 0]).min() > 0.5
    np.testing.assert_allclose(
        result_values(result, "distance"), matrix.min(axis=1), rtol=0, atol=1e-6
    )
    near = result_values(result, "near_index").astype(int)
    np.testing.assert_array_equal(near, matrix.argmin(axis=1))
    assert [f["properties"]["near_id"] for f in result["features"]] == [pumps.ids[j] for j in near]


def test_distance_in_the_web_mercator_plane(deaths: Layer, pumps: Layer):
    """method planar: the brute-force Euclidean minimum in EPSG:3857 units."""
    result = run(
        "distance", {"features": deaths.collection, "overlay": pumps.collection, "method": "planar"}
    )
    a = shapely.get_coordinates(deaths.geometries)
    b = shapely.get_coordinates(pumps.geometries)
    planar = np.hypot(a[:, 0, None] - b[None, :, 0], a[:, 1, None] - b[None, :, 1])
    np.testing.assert_allclose(result_values(result, "distance"), planar.min(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(result_values(result, "near_index"), planar.argmin(axis=1))


def test_search_radius_leaves_deaths_beyond_it_without_a_pump(deaths: Layer, pumps: Layer):
    result = run(
        "distance",
        {
            "features": deaths.collection,
            "overlay": pumps.collection,
            "search_radius": {"value": 100, "unit": "meter"},
        },
    )
    nearest = _death_pump_matrix(deaths, pumps).min(axis=1)
    got = result_values(result, "distance")
    far = nearest > 100.0
    assert 0 < far.sum() < len(far)
    assert np.isnan(got[far]).all()
    assert all(
        f["properties"]["near_id"] is None
        for f, x in zip(result["features"], far, strict=True)
        if x
    )
    np.testing.assert_allclose(got[~far], nearest[~far], atol=1e-6)


def test_broad_street_pump_is_nearest_to_most_deaths(deaths: Layer, pumps: Layer):
    """Snow's finding, from the handler's near_index: the pump nearest to the most death
    addresses (185 of 324) stands within 50 m of the Broad Street pump's published site."""
    result = run("distance", {"features": deaths.collection, "overlay": pumps.collection})
    counts = np.bincount(result_values(result, "near_index").astype(int), minlength=len(pumps))
    top = int(counts.argmax())
    assert counts[top] == 185
    pump = pumps.lonlat()[top]
    _, _, d = GEOD.inv(pump.x, pump.y, *BROAD_STREET_PUMP_LONLAT)
    assert d < 50.0


def test_distance_from_each_death_to_the_nearest_street(deaths: Layer, streets: Layer):
    """Line overlay: the distance to the nearest street equals the brute-force minimum over
    all 118 streets, measured in an azimuthal equidistant frame centred on each death
    (exact for distances from the centre)."""
    result = run("distance", {"features": deaths.collection, "overlay": streets.collection})
    got = result_values(result, "distance")
    lines = streets.lonlat()
    reference = np.empty(len(deaths))
    for i, death in enumerate(deaths.lonlat()):
        d = shapely.distance(shapely.Point(0.0, 0.0), transform(lines, aeqd(death.x, death.y)))
        reference[i] = d.min()
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-3)
