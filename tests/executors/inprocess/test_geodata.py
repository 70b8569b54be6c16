"""Internal encodings <-> shapely arrays (executors.geodata)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import shapely

from executors.base import InvalidInput
from executors.geodata import (
    Features,
    features_from_json,
    features_to_json,
    geometries_to_geojson,
    read_features,
    read_geometry,
    write_features,
    write_geometry,
)
from tests.executors.inprocess.support import fc


def test_points_fast_path_keeps_coordinates_ids_and_properties():
    value = fc([shapely.Point(1.5, 2.5), shapely.Point(-170.25, 80.125)], srid=4326)
    feats = read_features(value)
    assert feats.srid == 4326 and feats.ids == [0, 1]
    assert feats.properties == [{"i": 0}, {"i": 1}]
    assert shapely.equals_exact(
        feats.geometries, shapely.points([(1.5, 2.5), (-170.25, 80.125)]), 0
    ).all()
    assert write_features(feats) == value


def test_mixed_null_z_and_multipart_geometries_round_trip_exactly():
    polygon_with_hole = shapely.Polygon(
        [(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (3, 2), (3, 3), (2, 2)]]
    )
    geoms = [
        shapely.Point(1, 2, 3),
        None,
        shapely.LineString([(0, 0), (1, 1), (2, 0)]),
        polygon_with_hole,
        shapely.MultiPolygon([polygon_with_hole, shapely.box(20, 20, 21, 21)]),
        shapely.MultiPoint([(0, 0), (1, 1)]),
        shapely.MultiLineString([[(0, 0), (1, 0)], [(2, 2), (3, 3)]]),
        shapely.GeometryCollection([shapely.Point(0, 0), shapely.LineString([(0, 0), (1, 1)])]),
        shapely.Point(0.1, 0.2),
    ]
    value = fc(geoms, srid=3857)
    feats = read_features(value)
    assert feats.geometries[1] is None
    for got, want in zip(feats.geometries, geoms, strict=True):
        assert (got is None and want is None) or shapely.equals_exact(got, want, 0)
    out = write_features(feats)
    assert out["features"][0]["geometry"] == {"type": "Point", "coordinates": [1.0, 2.0, 3.0]}
    assert out["features"][3]["geometry"]["coordinates"][1] == [[2, 2], [3, 2], [3, 3], [2, 2]]
    assert out["features"][7]["geometry"]["type"] == "GeometryCollection"
    assert read_features(out).geometries.tolist() == feats.geometries.tolist()


def test_empty_geometries_are_written_as_empty_coordinates():
    docs = geometries_to_geojson(np.array([shapely.Polygon(), shapely.Point()], dtype=object))
    assert docs == [{"type": "Polygon", "coordinates": []}, {"type": "Point", "coordinates": []}]


def test_invalid_geometry_names_the_feature_index():
    value = fc([shapely.Point(0, 0), shapely.Point(1, 1), shapely.Point(2, 2)])
    value["features"][2]["geometry"] = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0]]]}
    with pytest.raises(InvalidInput, match=r"features: feature 2 has an invalid geometry"):
        read_features(value)


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "closed"),
        ({"type": "LineString", "coordinates": [[0, 0]]}, "elements"),
        ({"type": "MultiPolygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "array"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, "x"], [0, 0]]]}, "number"),
    ],
)
def test_malformed_lines_and_polygons_are_invalid_input(geometry, reason):
    value = fc([shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)])
    value["features"][1]["geometry"] = geometry
    with pytest.raises(InvalidInput, match=f"feature 1 has an invalid geometry: .*{reason}"):
        read_features(value)


def test_polygons_lines_and_3d_parse_through_flat_coordinates():
    shapes = [
        shapely.Polygon([(0, 0, 1), (1, 0, 2), (1, 1, 3), (0, 0, 1)]),
        shapely.box(0, 0, 1, 1),
        shapely.MultiLineString([[(0, 0), (1, 1)], [(2, 2), (3, 3), (4, 5)]]),
        shapely.LineString(),
        shapely.MultiPolygon(),
    ]
    parsed = read_features(fc(shapes)).geometries
    for got, want in zip(parsed, shapes, strict=True):
        assert shapely.equals_exact(got, want, 0) or (got.is_empty and want.is_empty)
    assert parsed[0].has_z


def test_bad_point_coordinates_and_unknown_types_are_invalid_input():
    value = fc([shapely.Point(0, 0), shapely.Point(1, 1)])
    value["features"][1]["geometry"] = {"type": "Point", "coordinates": ["a"]}
    with pytest.raises(InvalidInput, match="feature 1"):
        read_features(value)
    value["features"][1]["geometry"] = {"type": "Blob", "coordinates": [1, 2]}
    with pytest.raises(InvalidInput, match="feature 1"):
        read_features(value)
    value["features"][1] = "not a feature"
    with pytest.raises(InvalidInput, match="feature 1 is not a GeoJSON Feature"):
        read_features(value)


def test_geometry_value_and_single_feature_are_accepted_as_collections():
    geom, srid = read_geometry({"type": "Point", "coordinates": [5, 6], "srid": 32632})
    assert srid == 32632 and geom.equals(shapely.Point(5, 6))
    feats = read_features({"type": "LineString", "coordinates": [[0, 0], [1, 1]], "srid": 3857})
    assert len(feats) == 1 and feats.srid == 3857
    assert write_geometry(shapely.Point(1, 2), 4326) == {
        "type": "Point",
        "coordinates": [1.0, 2.0],
        "srid": 4326,
    }


def test_json_bytes_round_trip_and_field_bookkeeping():
    value = fc([shapely.Point(1, 2)])
    value["fields"] = [{"name": "i", "type": "integer"}]
    feats = features_from_json(orjson.dumps(value))
    feats = feats.with_field("area", [1.5], "number")
    doc = orjson.loads(features_to_json(feats))
    assert doc["fields"] == [{"name": "i", "type": "integer"}, {"name": "area", "type": "number"}]
    assert doc["features"][0]["properties"] == {"i": 0, "area": 1.5}
    assert value["features"][0]["properties"] == {"i": 0}  # inputs are never mutated


def test_take_selects_and_repeats_rows():
    feats = Features(
        shapely.points([(0, 0), (1, 1)]).astype(object), [{"a": 1}, {"a": 2}], ["x", "y"], 4326
    )
    picked = feats.take([1, 1, 0])
    assert picked.ids == ["y", "y", "x"] and [p["a"] for p in picked.properties] == [2, 2, 1]
