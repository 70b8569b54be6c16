"""gpserver.geometry without a database: Esri geometry JSON <-> GeoJSON, rings, spatial references."""

from __future__ import annotations

import pytest
from pyproj import CRS

from controlplane import exceptions as errors
from gpserver import geometry as geo

SQUARE_CW = [[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]]
HOLE_CCW = [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]]
FAR_CW = [[20, 20], [20, 30], [30, 30], [30, 20], [20, 20]]


def ccw(ring):
    return geo.signed_area(ring) > 0


def test_point_with_z_and_m_round_trip():
    gj = geo.esri_to_geojson({"x": 1.5, "y": 2.5, "z": 3, "m": 4, "spatialReference": {"wkid": 4326}}, has_m=True)
    assert gj == {"type": "Point", "coordinates": [1.5, 2.5, 3, 4]}
    assert geo.geojson_to_esri(gj, geo.POINT) == {"x": 1.5, "y": 2.5}
    assert geo.geojson_to_esri(gj, geo.POINT, z=True) == {"x": 1.5, "y": 2.5, "z": 3}
    assert geo.geojson_to_esri(gj, geo.POINT, z=True, m=True) == {"x": 1.5, "y": 2.5, "z": 3, "m": 4}


def test_m_without_z_is_not_read_as_z():
    gj = geo.esri_to_geojson({"paths": [[[0, 0, 7], [1, 1, 8]]], "hasM": True})
    assert gj == {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    gj = geo.esri_to_geojson({"paths": [[[0, 0, 7], [1, 1, 8]]], "hasZ": True})
    assert gj == {"type": "LineString", "coordinates": [[0, 0, 7], [1, 1, 8]]}
    gj = geo.esri_to_geojson({"paths": [[[0, 0, 7, 9], [1, 1, 8, 9]]], "hasZ": True, "hasM": True})
    assert geo.geojson_to_esri(gj, geo.POLYLINE, z=True, m=True) == {"paths": [[[0, 0, 7, 9], [1, 1, 8, 9]]]}
    assert geo.geojson_to_esri(gj, geo.POLYLINE, m=True) == {"paths": [[[0, 0, 9], [1, 1, 9]]]}


@pytest.mark.parametrize("point", [{"x": "NaN", "y": 1}, {"x": None, "y": None}, {"x": None}])
def test_empty_points_are_none(point):
    assert geo.esri_to_geojson(point) is None


def test_multipoint_and_polylines():
    assert geo.esri_to_geojson({"points": [[1, 2], [3, 4]]}) == {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]}
    two = geo.esri_to_geojson({"paths": [[[0, 0], [1, 1]], [[2, 2], [3, 3]]]})
    assert two == {"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]], [[2, 2], [3, 3]]]}
    assert geo.geojson_to_esri(two, geo.POLYLINE) == {"paths": [[[0, 0], [1, 1]], [[2, 2], [3, 3]]]}
    assert geo.geojson_to_esri({"type": "Point", "coordinates": [1, 2]}, geo.MULTIPOINT) == {"points": [[1, 2]]}


def test_polygon_exterior_clockwise_hole_counter_clockwise():
    gj = geo.esri_to_geojson({"rings": [SQUARE_CW, HOLE_CCW]})
    assert gj["type"] == "Polygon"
    shell, hole = gj["coordinates"]
    assert ccw(shell) and not ccw(hole)  # RFC 7946
    back = geo.geojson_to_esri(gj, geo.POLYGON)
    assert not ccw(back["rings"][0]) and ccw(back["rings"][1])  # Esri
    assert back == {"rings": [SQUARE_CW, HOLE_CCW]}


def test_rings_group_into_polygons_by_containment():
    hole_in_far = [[22, 22], [24, 22], [24, 24], [22, 24], [22, 22]]
    gj = geo.esri_to_geojson({"rings": [SQUARE_CW, FAR_CW, hole_in_far, HOLE_CCW]})
    assert gj["type"] == "MultiPolygon"
    first, second = gj["coordinates"]
    assert len(first) == 2 and first[1][0] == [2, 2]
    assert len(second) == 2 and second[1][0] == [22, 22]


def test_island_in_a_hole_is_its_own_polygon():
    island = [[2.5, 2.5], [2.5, 3.5], [3.5, 3.5], [3.5, 2.5], [2.5, 2.5]]  # clockwise
    gj = geo.esri_to_geojson({"rings": [SQUARE_CW, HOLE_CCW, island]})
    assert gj["type"] == "MultiPolygon"
    assert [len(p) for p in gj["coordinates"]] == [2, 1]


def test_counter_clockwise_exteriors_are_classified_by_nesting():
    outer = SQUARE_CW[::-1]
    inner = HOLE_CCW
    gj = geo.esri_to_geojson({"rings": [outer, inner]})
    assert gj["type"] == "Polygon" and len(gj["coordinates"]) == 2
    assert ccw(gj["coordinates"][0]) and not ccw(gj["coordinates"][1])
    one = geo.esri_to_geojson({"rings": [outer]})
    assert one["type"] == "Polygon" and ccw(one["coordinates"][0])


def test_orphan_hole_becomes_an_exterior_and_open_rings_are_closed():
    gj = geo.esri_to_geojson({"rings": [SQUARE_CW, [[50, 50], [60, 50], [60, 60], [50, 60]]]})
    assert gj["type"] == "MultiPolygon"
    assert gj["coordinates"][1][0][0] == gj["coordinates"][1][0][-1]


def test_envelope_is_a_polygon():
    gj = geo.esri_to_geojson({"xmin": 0, "ymin": 1, "xmax": 2, "ymax": 3})
    assert gj == {"type": "Polygon", "coordinates": [[[0, 1], [2, 1], [2, 3], [0, 3], [0, 1]]]}


@pytest.mark.parametrize(
    "bad",
    [{"curveRings": []}, {"x": "a", "y": 1}, {"points": [[1]]}, {"paths": "x"}, {"foo": 1}, [1, 2],
     {"x": float("inf"), "y": 0}],
)
def test_bad_geometries(bad):
    with pytest.raises(errors.InvalidGeometry):
        geo.esri_to_geojson(bad)


def test_geojson_collections_keep_the_chosen_dimension():
    gc = {"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": [1, 1]},
        {"type": "Polygon", "coordinates": [SQUARE_CW]},
    ]}
    assert geo.geojson_kind(gc) == geo.POLYGON
    out = geo.geojson_to_esri(gc, geo.POLYGON)
    assert out == {"rings": [SQUARE_CW]}
    assert geo.geojson_to_esri({"type": "Point", "coordinates": [1, 1]}, geo.POLYGON) is None
    assert geo.choose_kind([geo.POINT, geo.MULTIPOINT], geo.POLYGON) == geo.MULTIPOINT
    assert geo.choose_kind([geo.POINT, geo.POLYLINE, None], geo.POLYGON) == geo.POLYLINE
    assert geo.choose_kind([None], geo.POINT) == geo.POINT


def test_multipolygon_out_orients_every_ring():
    mp = {"type": "MultiPolygon", "coordinates": [
        [SQUARE_CW, HOLE_CCW],  # wrong way round for GeoJSON: the output is oriented anyway
        [FAR_CW[::-1]],
    ]}
    rings = geo.geojson_to_esri(mp, geo.POLYGON)["rings"]
    assert [ccw(r) for r in rings] == [False, True, False]


@pytest.mark.parametrize(
    ("sr", "srid"),
    [
        ({"wkid": 4326}, 4326),
        ({"wkid": 102100, "latestWkid": 3857}, 3857),
        ({"wkid": 102100}, 3857),
        ({"wkid": 102113}, 3857),
        ({"wkid": 900913}, 3857),
        ({"latestWkid": 2056, "wkid": 21781}, 2056),
        (3857, 3857),
        ("25832", 25832),
        ({"wkt": CRS.from_epsg(4326).to_wkt("WKT1_ESRI")}, 4326),
        ({"wkt": CRS.from_epsg(3857).to_wkt("WKT1_GDAL")}, 3857),
        ({"wkt": CRS.from_epsg(32633).to_wkt()}, 32633),
        (None, None),
        ({}, None),
    ],
)
def test_spatial_references(sr, srid):
    assert geo.srid_from_sr(sr, "sr") == srid


@pytest.mark.parametrize("sr", [{"wkt": "PROJCS[nonsense"}, {"vcsWkid": 5703}, "abc", [4326]])
def test_bad_spatial_references(sr):
    with pytest.raises(errors.InvalidParameterValue):
        geo.srid_from_sr(sr, "sr")


def test_sr_json_writes_web_mercator_as_esri_does():
    assert geo.sr_json(3857) == {"wkid": 102100, "latestWkid": 3857}
    assert geo.sr_json(4326) == {"wkid": 4326, "latestWkid": 4326}
