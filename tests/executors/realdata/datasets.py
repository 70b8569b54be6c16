"""Real datasets shipped as files by the ``libpysal`` wheel (DESIGN §11), read like user files.

Every layer is opened with GDAL through GeoDjango (``django.contrib.gis.gdal.DataSource``):
the handlers get GDAL's GeoJSON of each geometry in an internal feature collection
(``{"type": "FeatureCollection", "srid": N, "features": [...]}``), while the independent
reference computations in the tests start from GDAL's WKB of the same features (a separate
parse path; GDAL's GeoJSON writer rounds some coordinates, e.g. Columbus's to 15 significant
digits, so the two may differ by an ULP, and exact predicates such as "covers" use
``Layer.given``, the geometries as the handlers get them) and use pyproj / shapely directly.

Spatial references. A layer with a ``.prj`` gets its EPSG code from the ``.prj``: the
authority code GDAL attached when it read the file, else ``SpatialReference.identify_epsg``,
else ``pyproj.CRS.from_wkt(...).to_epsg(min_confidence=70)``. Layers shipped without a
``.prj`` get an explicit, documented assumption (the ``*_SRID`` constants below), and
``test_datasets.py`` checks each assumption against what the data allow.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import shapely
from django.contrib.gis.gdal import DataSource, SpatialReference
from django.contrib.gis.gdal.error import GDALException, SRSException
from pyproj import CRS, Transformer

from executors.base import ExecutionContext
from executors.inprocess.executor import InProcessExecutor

# --- CRS assumptions for the layers shipped without a .prj ---------------------------------

# georgia/G_utm.shp: "Georgia counties in UTM" with no .prj. Eastings 627 km - 1082 km over
# Georgia (85.6 W - 80.8 W) fit UTM zone 16N stretched east of its usual 6 degrees (zone
# 17N would give 58 km - 515 km), and the county Latitude/Longitud in the .dbf land inside
# their own polygons through zone 16N and through neither neighbouring zone (checked in
# test_datasets.py). The datum cannot be told from the data (NAD27 and NAD83 differ by tens
# of metres here, NAD83 and WGS 84 by about one); we assume NAD83, the datum of US federal
# county boundaries. Every check that uses it is datum-independent or far looser than that.
GEORGIA_SRID = 26916  # NAD83 / UTM zone 16N

# baltim/baltim.shp (211 house sales, extent 860-988 x 505-581) and columbus/columbus.shp
# (49 neighbourhoods, extent 5.9-11.3 x 10.8-14.7) have no .prj and are not in any EPSG
# system: they are the planar grid / digitising units of the original studies (columbus's
# AREA field is the planar shoelace area in those units, see test_datasets.py). The handlers
# used on them (convex hull, union) are planar in the working CRS and nothing is reprojected
# when the output CRS is the input's, so the code below is only a label that must come back
# unchanged with the coordinates in the same units. It names a projected CRS in metres so
# that nothing downstream would take the numbers for degrees.
PLANAR_LABEL_SRID = 3857

# Georgia's published total (land + water) area: 59,425 sq mi = 153,910 km².
GEORGIA_PUBLISHED_AREA_KM2 = 153_910.0
# Georgia's published extent (degrees): 30.36 N - 35.00 N, 80.84 W - 85.61 W.
GEORGIA_PUBLISHED_BOUNDS = (-85.61, 30.36, -80.84, 35.00)
# The Broad Street pump (today's Broadwick Street, Soho): 51°30′48″N 0°08′12″W.
BROAD_STREET_PUMP_LONLAT = (-0.136668, 51.513341)


@dataclass(frozen=True)
class Layer:
    """One shapefile layer as the handlers get it and as the references see it."""

    name: str
    path: Path
    srid: int
    srid_source: str  # "prj: ..." or "assumed: ..."
    collection: dict[str, Any]  # internal feature_collection value (GDAL's GeoJSON)
    geometries: np.ndarray  # shapely geometries from GDAL's WKB (the reference side)
    properties: list[dict[str, Any]]
    ids: list[int]

    def __len__(self) -> int:
        return len(self.geometries)

    @property
    def given(self) -> np.ndarray:
        """The geometries exactly as the handlers get them (GDAL's GeoJSON rounds some
        coordinates, so they may differ from ``geometries`` by an ULP): for exact predicates."""
        return result_geometries(self.collection)

    def lonlat(self) -> np.ndarray:
        """The reference geometries in EPSG:4326 lon/lat, transformed by pyproj directly."""
        return to_lonlat(self.geometries, self.srid)


def libpysal_examples() -> Path:
    """The ``examples`` folder of the installed libpysal wheel (without importing libpysal)."""
    spec = importlib.util.find_spec("libpysal")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "libpysal is not installed: the real-data tests read the datasets its wheel ships "
            "(DESIGN §11); install the dev extras: pip install -e '.[dev]'",
            pytrace=False,
        )
    return Path(next(iter(spec.submodule_search_locations))) / "examples"


def dataset_file(relative: str) -> Path:
    """A file of a libpysal example dataset; fails the test (never skips) when it is missing."""
    path = libpysal_examples() / relative
    if not path.is_file():
        version = importlib.metadata.version("libpysal")
        pytest.fail(
            f"{relative} is missing from the libpysal {version} wheel ({path}); the real-data "
            "tests need it (DESIGN §11)",
            pytrace=False,
        )
    return path


def epsg_from_wkt(wkt: str) -> tuple[int | None, str]:
    """The EPSG code of a WKT (ESRI .prj text or OGC WKT) and the route that found it."""
    srs = SpatialReference(wkt)
    if srs.srid:
        return int(srs.srid), "authority code in the WKT"
    try:
        srs.identify_epsg()
    except (GDALException, SRSException):  # "Unsupported SRS" for ESRI WKT
        pass
    else:
        if srs.srid:
            return int(srs.srid), "GDAL identify_epsg"
    code = CRS.from_wkt(wkt).to_epsg(min_confidence=70)
    if code is not None:
        return int(code), "pyproj to_epsg(min_confidence=70)"
    return None, "unidentified"


def read_layer(relative: str, *, assumed_srid: int | None = None) -> Layer:
    """Open a shapefile with GDAL; the srid from its .prj, else ``assumed_srid`` (required)."""
    path = dataset_file(relative)
    prj = path.with_suffix(".prj")
    layer = DataSource(str(path))[0]
    if prj.is_file():
        srs = layer.srs
        if srs is None:
            pytest.fail(f"{relative}: GDAL did not read {prj.name}", pytrace=False)
        srid, route = epsg_from_wkt(srs.wkt)
        if srid is None:
            pytest.fail(f"{relative}: no EPSG code identifies {prj.name}", pytrace=False)
        if assumed_srid is not None and assumed_srid != srid:
            pytest.fail(
                f"{relative}: now ships {prj.name} saying EPSG:{srid}, not the assumed "
                f"EPSG:{assumed_srid}",
                pytrace=False,
            )
        source = f"prj: {route}"
    elif assumed_srid is None:
        pytest.fail(f"{relative} has no .prj and no CRS assumption was given", pytrace=False)
    else:
        srid, source = assumed_srid, "assumed: no .prj in the wheel"

    fields = list(layer.fields)
    features: list[dict[str, Any]] = []
    wkb: list[bytes] = []
    properties: list[dict[str, Any]] = []
    ids: list[int] = []
    for feature in layer:
        geom = feature.geom
        props = {name: feature.get(name) for name in fields}
        features.append(
            {
                "type": "Feature",
                "id": feature.fid,
                "geometry": orjson.loads(geom.json),
                "properties": props,
            }
        )
        wkb.append(bytes(geom.wkb))
        properties.append(dict(props))
        ids.append(feature.fid)
    return Layer(
        name=relative,
        path=path,
        srid=srid,
        srid_source=source,
        collection={"type": "FeatureCollection", "srid": srid, "features": features},
        geometries=np.asarray(shapely.from_wkb(wkb), dtype=object),
        properties=properties,
        ids=ids,
    )


# --- running handlers and reading their results ---------------------------------------------


def run(handler: str, inputs: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    """The ``result`` output of the real in-process handler."""
    context = ExecutionContext(run_id="t", process_id=handler, handler=handler, **ctx)
    return InProcessExecutor().execute(handler, inputs, context)["result"]


def result_geometries(result: dict[str, Any]) -> np.ndarray:
    return np.asarray(
        [
            None if f["geometry"] is None else shapely.from_geojson(orjson.dumps(f["geometry"]))
            for f in result["features"]
        ],
        dtype=object,
    )


def result_values(result: dict[str, Any], name: str) -> np.ndarray:
    return np.array(
        [
            np.nan if f["properties"][name] is None else f["properties"][name]
            for f in result["features"]
        ],
        dtype=float,
    )


def collection(geoms: np.ndarray, srid: int, ids: list[Any] | None = None) -> dict[str, Any]:
    """An internal feature collection of shapely geometries (for inputs the tests derive)."""
    return {
        "type": "FeatureCollection",
        "srid": srid,
        "features": [
            {
                "type": "Feature",
                "id": i if ids is None else ids[i],
                "geometry": shapely.geometry.mapping(g),  # every digit kept
                "properties": {},
            }
            for i, g in enumerate(geoms)
        ],
    }


# --- independent geodesy --------------------------------------------------------------------


def to_lonlat(geoms: np.ndarray, srid: int) -> np.ndarray:
    """Geometries transformed to EPSG:4326 lon/lat by pyproj (no project code involved)."""
    if srid == 4326:
        return geoms
    tr = Transformer.from_crs(srid, 4326, always_xy=True)
    return np.asarray(
        shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))),
        dtype=object,
    )


def aeqd(lon: float, lat: float) -> Transformer:
    """From EPSG:4326 lon/lat to an azimuthal equidistant frame (metres, WGS 84) centred on
    (lon, lat).

    Distances from the centre are exact in it; other short distances at ``r`` from the centre
    are off by a relative ~(r/R)²/6 (1e-5 at 50 km, 4e-9 across Soho).
    """
    return Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=aeqd +lat_0={lat!r} +lon_0={lon!r} +ellps=WGS84"
    )


def transform(geoms: np.ndarray | shapely.Geometry, tr: Transformer) -> Any:
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
