"""LayerSource: JSON round trip and the readers of a table and of a file, compared with
independent reads (SQL through Django's cursor, GDAL through GeoDjango's DataSource)."""

from __future__ import annotations

import numpy as np
import pyogrio.raw
import pytest
import shapely
from django.contrib.gis.gdal import DataSource
from django.db import connection

from executors.base import InvalidInput
from executors.layers.source import LayerSource, source_count, source_geometries_sql, source_read

RNG = np.random.default_rng(7)
XY = RNG.uniform([-10, 40], [10, 60], size=(300, 2))
VALUES = RNG.integers(0, 1000, size=300)


@pytest.fixture
def table(django_db_blocker) -> LayerSource:
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE public.src_pts (gid integer PRIMARY KEY, geom geometry(Point, 4326), v integer, name text)")
        cur.executemany(
            "INSERT INTO public.src_pts VALUES (%s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s, %s)",
            [(i + 1, float(x), float(y), int(v), f"p{i}") for i, ((x, y), v) in enumerate(zip(XY, VALUES, strict=False))],
        )
    return LayerSource(
        layer="pts", storage="postgis", label="table public.src_pts", srid=4326, geometry_type="Point",
        fields=({"name": "v", "column": "v", "type": "integer"}, {"name": "name", "column": "name", "type": "string"}),
        schema="public", table="src_pts", geometry_column="geom", id_column="gid",
    )


@pytest.fixture
def gpkg(tmp_path) -> LayerSource:
    path = tmp_path / "pts.gpkg"
    pyogrio.raw.write(
        str(path), shapely.to_wkb(shapely.points(XY)), [VALUES.astype("int64"), np.array([f"p{i}" for i in range(300)], dtype=object)],
        fields=["v", "name"], geometry_type="Point", crs="EPSG:4326", driver="GPKG", layer="pts",
    )
    return LayerSource(
        layer="pts", storage="file", label="GeoPackage pts.gpkg", srid=4326, geometry_type="Point",
        fields=({"name": "v", "column": "v", "type": "integer"}, {"name": "name", "column": "name", "type": "string"}),
        path=str(path), driver="GPKG", sublayer="pts",
    )


def test_json_round_trip():
    source = LayerSource(
        layer="a", storage="file", label="x", srid=3857, fields=({"name": "n", "column": "n", "type": "number"},),
        path="/vsizip/{/x.zip}", open_options={"X_POSSIBLE_NAMES": "lon"}, bbox=(1.0, 2.0, 3.0, 4.0),
        filter={"op": "=", "args": [{"property": "n"}, 1]},
    )
    assert LayerSource.from_json(source.to_json()) == source
    with pytest.raises(InvalidInput):
        LayerSource.from_json({"layer": "a", "nonsense": 1})


@pytest.mark.django_db
def test_table_read_matches_sql_and_pages(table):
    features = source_read(table)
    assert len(features) == 300 and features.ids == list(range(1, 301))
    assert np.allclose(shapely.get_coordinates(features.geometries), XY)
    assert [p["v"] for p in features.properties] == VALUES.tolist()
    page = source_read(table, limit=10, offset=295)
    assert page.ids == [296, 297, 298, 299, 300]
    assert source_count(table) == 300


@pytest.mark.django_db
def test_table_bbox_in_other_crs_matches_postgis(table):
    # bbox in Web Mercator: the reader reprojects it into the layer's CRS.
    box = (-500_000.0, 5_500_000.0, 600_000.0, 7_000_000.0)
    selected = table.replace(bbox=box, bbox_srid=3857)
    features = source_read(selected)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT gid FROM public.src_pts WHERE ST_Intersects(ST_Transform(geom, 3857), "
            "ST_MakeEnvelope(%s, %s, %s, %s, 3857)) ORDER BY gid", list(box)
        )
        expected = [r[0] for r in cur.fetchall()]
    assert 0 < len(expected) < 300
    assert features.ids == expected and source_count(selected) == len(expected)


@pytest.mark.django_db
def test_geometries_sql_selects_in_id_order(table):
    query, params = source_geometries_sql(table.replace(bbox=(-5.0, 45.0, 5.0, 55.0)))
    with connection.cursor() as cur:
        cur.execute(query.as_string(connection.connection), params)
        rows = cur.fetchall()
    inside = np.flatnonzero((XY[:, 0] >= -5) & (XY[:, 0] <= 5) & (XY[:, 1] >= 45) & (XY[:, 1] <= 55))
    assert [r[0] for r in rows] == list(range(1, len(inside) + 1))
    got = shapely.get_coordinates(shapely.from_wkb([bytes.fromhex(r[1]) if isinstance(r[1], str) else r[1] for r in rows]))
    assert np.allclose(got, XY[inside])


def test_file_read_matches_gdal(gpkg):
    features = source_read(gpkg)
    layer = DataSource(gpkg.path)[0]
    ref = [shapely.from_wkb(bytes(f.geom.wkb)) for f in layer]
    assert len(features) == len(ref) == 300
    assert all(shapely.equals_exact(a, b, 0) for a, b in zip(features.geometries, ref, strict=False))
    assert [p["v"] for p in features.properties] == [f.get("v") for f in layer]
    assert features.ids == list(range(1, 301))
    page = source_read(gpkg, limit=3, offset=10)
    assert page.ids == [11, 12, 13] and page.properties[0]["name"] == "p10"


def test_file_bbox_agrees_with_shapely(gpkg):
    box = (-5.0, 45.0, 5.0, 55.0)
    features = source_read(gpkg.replace(bbox=box))
    inside = np.flatnonzero(shapely.intersects(shapely.points(XY), shapely.box(*box)))
    assert features.ids == (inside + 1).tolist()
    assert source_count(gpkg.replace(bbox=box)) == len(inside)
    # a bbox in another CRS, reprojected like the postgis reader does
    merc = source_read(gpkg.replace(bbox=(-500_000.0, 5_500_000.0, 600_000.0, 7_000_000.0), bbox_srid=3857))
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(XY[:, 0], XY[:, 1])
    expected = np.flatnonzero((x >= -500_000) & (x <= 600_000) & (y >= 5_500_000) & (y <= 7_000_000)) + 1
    assert merc.ids == expected.tolist()


def test_file_source_has_no_sql(gpkg):
    with pytest.raises(InvalidInput, match="file"):
        source_geometries_sql(gpkg)
