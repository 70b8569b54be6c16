"""``GPServer/info``, ``info/iteminfo``, ``info/metadata`` and ``info/thumbnail``: the item
information of a GP service from the catalog (its description, its tasks' keywords as tags)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from controlplane.models import GPService
from tests.gpserver.support import ANALYSIS, GEOMETRY, ROOT, assert_error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gp")]


def test_iteminfo_from_the_catalog(api):
    info = api.get(f"{ANALYSIS}/info/iteminfo")
    assert info["name"] == "Analysis" and info["title"] == "Analysis"
    assert info["type"] == "Geoprocessing Service"
    assert info["description"].startswith("Spatial analysis run as jobs")
    assert info["snippet"] == info["summary"] == (
        "Spatial analysis run as jobs: buffers and dissolves of large inputs, Voronoi (Thiessen) "
        "polygons, Delaunay triangulation, density-based clustering (DBSCAN), k-means clustering "
        "and clusters of features within a distance of each other."
    )
    # Tags: the keywords of the service's tasks (buffer, voronoi, ..., echo), each once.
    assert info["tags"][:3] == ["geometry", "proximity", "buffer"]
    assert "ogc-ets" in info["tags"] and len(info["tags"]) == len({t.lower() for t in info["tags"]})
    assert info["guid"] == api.get(f"{ANALYSIS}/info/iteminfo")["guid"] != api.get(f"{GEOMETRY}/info/iteminfo")["guid"]
    assert "voronoi" not in api.get(f"{GEOMETRY}/info/iteminfo")["tags"]


def test_info_names_its_children(api, client):
    info = api.get(f"{ANALYSIS}/info")
    assert info["itemInfo"] == api.get(f"{ANALYSIS}/info/iteminfo")
    assert info["metadataUrl"] == f"http://testserver{ANALYSIS}/info/metadata" and info["thumbnailUrl"] is None
    assert "Item info" in api.html(f"{ANALYSIS}/info/iteminfo")


def test_snippet_is_cut_at_250_characters(api):
    GPService.objects.filter(name="Geometry").update(description="word " * 100)
    from controlplane.services.policy import policy_cache_clear

    policy_cache_clear()
    info = api.get(f"{GEOMETRY}/info/iteminfo")
    assert len(info["snippet"]) == 250 and info["snippet"].endswith("\u2026")


def test_metadata_is_arcgis_xml(api, client):
    response = client.get(f"{ANALYSIS}/info/metadata", {"f": "xml"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "metadata" and root.findtext("Esri/ArcGISstyle") == "Item Description"
    assert root.findtext("dataIdInfo/idCitation/resTitle") == "Analysis"
    assert root.findtext("dataIdInfo/idAbs").startswith("Spatial analysis run as jobs")
    assert [k.text for k in root.findall("dataIdInfo/searchKeys/keyword")][:2] == ["geometry", "proximity"]
    assert client.get(f"{ANALYSIS}/info/metadata")["Content-Type"].startswith("text/xml")
    assert_error(api.get(f"{ANALYSIS}/info/metadata", format="iso19139"), 400, "iso19139")


def test_thumbnail_and_unknown_services_are_error_envelopes(api):
    error = assert_error(api.get(f"{ANALYSIS}/info/thumbnail"), 404, "no thumbnail")
    assert error["messageCode"] == "no-thumbnail"
    assert_error(api.get(f"{ROOT}/Honua/Nope/GPServer/info/iteminfo"), 404, "no GP service")
    assert_error(api.get(f"{ROOT}/Honua/Nope/GPServer/info/metadata"), 404, "no GP service")
    assert_error(api.get(f"{ANALYSIS}/info/nope"), 400, "Invalid URL")
