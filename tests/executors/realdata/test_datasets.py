"""The real datasets as read with GDAL, and the evidence for each CRS assumption."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from tests.executors.realdata.datasets import (
    GEORGIA_PUBLISHED_BOUNDS,
    GEORGIA_SRID,
    Layer,
    dataset_file,
    epsg_from_wkt,
)


def test_layers_have_the_documented_sizes_and_types(
    deaths, pumps, streets, georgia, columbus, baltim
):
    expected = {
        "deaths": (deaths, 324, {"Point"}),
        "pumps": (pumps, 13, {"Point"}),
        "streets": (streets, 118, {"LineString"}),
        "georgia": (georgia, 159, {"Polygon", "MultiPolygon"}),
        "columbus": (columbus, 49, {"Polygon"}),
        "baltim": (baltim, 211, {"Point"}),
    }
    for name, (layer, count, types) in expected.items():
        assert len(layer) == count, name
        assert set(shapely.get_type_id(layer.geometries).tolist()) <= {
            {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPolygon": 6}[t] for t in types
        }, name
        assert shapely.is_valid(layer.geometries).all(), name
        assert len(layer.collection["features"]) == count, name


@pytest.mark.parametrize("name", ["SohoPeople", "SohoWater", "Soho_Network"])
def test_snow_maps_prj_identifies_as_web_mercator(name: str):
    """The ESRI .prj ("WGS_1984_Web_Mercator_Auxiliary_Sphere") has no AUTHORITY node; GDAL
    names it EPSG:3857 when it opens the layer, and the raw text resolves to 3857 through the
    fallbacks too."""
    raw = dataset_file(f"snow_maps/{name}.prj").read_text()
    assert "AUTHORITY" not in raw
    code, route = epsg_from_wkt(raw)
    assert code == 3857, route


def test_snow_maps_lie_in_soho(deaths: Layer, pumps: Layer, streets: Layer):
    """3857 is right: the layers fall in Soho, and the pump nearest to most deaths in Snow's
    map is the Broad Street pump (checked in test_measure.py)."""
    for layer in (deaths, pumps, streets):
        assert layer.srid == 3857
        assert layer.srid_source.startswith("prj")
        minx, miny, maxx, maxy = shapely.total_bounds(layer.lonlat())
        assert -0.146 < minx < maxx < -0.128, layer.name
        assert 51.508 < miny < maxy < 51.518, layer.name


def test_georgia_ships_no_prj_and_its_county_coordinates_fix_utm_zone_16n(georgia: Layer):
    """Each county's Latitude/Longitud (.dbf) projected by pyproj into UTM 16N lies inside
    that county's polygon; projected into zone 15N or 17N, none does."""
    assert not georgia.path.with_suffix(".prj").exists()
    assert georgia.srid == GEORGIA_SRID and georgia.srid_source.startswith("assumed")
    lon = np.array([p["Longitud"] for p in georgia.properties], dtype=float)
    lat = np.array([p["Latitude"] for p in georgia.properties], dtype=float)
    inside = {}
    for srid in (26915, 26916, 26917):
        x, y = Transformer.from_crs(4269, srid, always_xy=True).transform(lon, lat)
        inside[srid] = int(shapely.contains_xy(georgia.geometries, x, y).sum())
    assert inside == {26915: 0, 26916: 159, 26917: 0}


def test_georgia_in_lon_lat_has_georgias_published_extent(georgia: Layer):
    west, south, east, north = GEORGIA_PUBLISHED_BOUNDS
    minx, miny, maxx, maxy = shapely.total_bounds(georgia.lonlat())
    assert minx == pytest.approx(west, abs=0.05)
    assert miny == pytest.approx(south, abs=0.05)
    assert maxx == pytest.approx(east, abs=0.05)
    assert maxy == pytest.approx(north, abs=0.05)


def test_columbus_and_baltim_are_unreferenced_planar_grids(columbus: Layer, baltim: Layer):
    """No .prj; columbus's AREA attribute is the planar area in the file's own units."""
    for layer in (columbus, baltim):
        assert not layer.path.with_suffix(".prj").exists()
        assert layer.srid_source.startswith("assumed")
    recorded = np.array([p["AREA"] for p in columbus.properties])
    np.testing.assert_allclose(shapely.area(columbus.geometries), recorded, rtol=0, atol=5e-6)
