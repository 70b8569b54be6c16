"""The libpysal example layers, read once per session (reading all of them takes ~0.1 s)."""

from __future__ import annotations

import pytest

from tests.executors.realdata.datasets import (
    GEORGIA_SRID,
    PLANAR_LABEL_SRID,
    Layer,
    read_layer,
)


@pytest.fixture(scope="session")
def deaths() -> Layer:
    """John Snow's 1854 cholera deaths by address (324 points, Web Mercator .prj)."""
    return read_layer("snow_maps/SohoPeople.shp")


@pytest.fixture(scope="session")
def pumps() -> Layer:
    """The 13 public water pumps of Snow's map (points, Web Mercator .prj)."""
    return read_layer("snow_maps/SohoWater.shp")


@pytest.fixture(scope="session")
def streets() -> Layer:
    """Soho's street network on Snow's map (118 lines, Web Mercator .prj)."""
    return read_layer("snow_maps/Soho_Network.shp")


@pytest.fixture(scope="session")
def georgia() -> Layer:
    """Georgia's 159 counties, 1990, in UTM (no .prj: see GEORGIA_SRID)."""
    return read_layer("georgia/G_utm.shp", assumed_srid=GEORGIA_SRID)


@pytest.fixture(scope="session")
def columbus() -> Layer:
    """Columbus, Ohio: 49 neighbourhoods, 1980 (no .prj: see PLANAR_LABEL_SRID)."""
    return read_layer("columbus/columbus.shp", assumed_srid=PLANAR_LABEL_SRID)


@pytest.fixture(scope="session")
def baltim() -> Layer:
    """Baltimore house sales, 1978: 211 points (no .prj: see PLANAR_LABEL_SRID)."""
    return read_layer("baltim/baltim.shp", assumed_srid=PLANAR_LABEL_SRID)
