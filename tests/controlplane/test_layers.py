"""The layer catalog: GDAL ingest of real and written files (hosted and file storage) compared
with independent GDAL reads, table layers, publish, delete/expiry, isolation, the admin."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
from django.contrib.gis.gdal import DataSource
from django.db import IntegrityError, connection
from django.utils import timezone

from controlplane.contracts import Principal
from controlplane.exceptions import (
    InvalidParameterValue,
    NoSuchLayer,
    PayloadTooLarge,
    PermissionDenied,
    UnsupportedMediaType,
)
from controlplane.models import Artifact, AuditEvent, Layer, Tenant
from controlplane.selectors import (
    layer_for_principal,
    layer_items,
    layer_source_for,
    layers_for_principal,
)
from controlplane.services import layers as svc
from controlplane.services import uploads
from executors.layers.source import source_read
from tests.executors.realdata.datasets import dataset_file

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("honua_catalog")]


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "artifacts"


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.get(slug="demo")


@pytest.fixture
def reader() -> Principal:
    return Principal(tenant="demo", username="viewer", roles=("viewer",))


def _table_exists(table: str) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [f"honua_data.{table}"])
        return bool(cur.fetchone()[0])


def _zip_shapefile(relative: str) -> bytes:
    shp = dataset_file(relative)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in shp.parent.glob(shp.stem + ".*"):
            if part.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                archive.write(part, part.name)
    return buffer.getvalue()


def _reference(path: str, layer: int | str = 0) -> tuple[list[shapely.Geometry], list[dict]]:
    """An independent read of a file through GeoDjango's DataSource (GDAL's C API via ctypes)."""
    lyr = DataSource(path)[layer]
    geoms = [shapely.force_2d(shapely.from_wkb(bytes(f.geom.wkb))) for f in lyr]
    attrs = [{name: f.get(name) for name in lyr.fields} for f in lyr]
    return geoms, attrs


def _all(reader: Principal, collection_id: str):
    page = layer_items(principal=reader, collection_id=collection_id, limit=100000, out_srid=None)
    return page


def _check_against(reader, collection_id, geoms, attrs, *, tol=1e-9):
    page = _all(reader, collection_id)
    feats = page.features["features"]
    assert page.number_matched == len(geoms) == len(feats)
    ours = [shapely.geometry.shape(f["geometry"]) if f["geometry"] else None for f in feats]
    for a, b in zip(ours, geoms, strict=True):
        # normalised to multi-types: compare as point sets and vertices
        assert a.equals(b) or shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tol)
        assert np.allclose(np.sort(shapely.get_coordinates(a), axis=0), np.sort(shapely.get_coordinates(b), axis=0))
    for f, ref in zip(feats, attrs, strict=True):
        for name, value in ref.items():
            got = f["properties"][name]
            if isinstance(value, float):
                assert got == pytest.approx(value)
            elif value is None or value == "":
                assert got in (None, "")
            else:
                assert got == value or str(got) == str(value)
    assert [f["id"] for f in feats] == list(range(1, len(feats) + 1))


@pytest.mark.parametrize("storage", ["hosted", "file"])
def test_zipped_shapefile_with_prj(tenant, reader, storage):
    data = _zip_shapefile("virginia/vautm17n.shp")
    layer = svc.layer_ingest(tenant_id=tenant.pk, collection_id=f"va_{storage}", title="Virginia", data=data,
                             filename="virginia.zip", storage=storage)
    assert layer.srid == 32617  # from the .prj (UTM 17N)
    geoms, attrs = _reference(str(dataset_file("virginia/vautm17n.shp")))
    _check_against(reader, layer.collection_id, geoms, attrs)
    info = layer_for_principal(principal=reader, collection_id=layer.collection_id)
    assert info.geometry_type in ("Polygon", "MultiPolygon") and info.feature_count == len(geoms)
    west, south, east, north = info.extent
    assert -84 < west < east < -75 and 36 < south < north < 40  # Virginia, in degrees
    assert info.storage == ("file" if storage == "file" else "postgis")


@pytest.mark.parametrize("storage", ["hosted", "file"])
def test_geojson_points_real(tenant, reader, storage):
    path = dataset_file("baltim/baltimore.geojson")
    layer = svc.layer_ingest(tenant_id=tenant.pk, collection_id=f"balt_{storage}", title="B",
                             data=path.read_bytes(), filename="b.json", storage=storage)
    assert layer.srid == 4326 and layer.geometry_type == "Point"
    geoms, attrs = _reference(str(path))
    _check_against(reader, layer.collection_id, geoms, attrs)
    types = {f["name"]: f["type"] for f in layer.fields}
    assert types["PRICE"] == "number" and types["STATION"] == "integer"


@pytest.fixture
def written(tmp_path) -> dict[str, Path]:
    """Files written with GDAL (pyogrio): two-layer GeoPackage, FlatGeobuf, KML, CSVs."""
    rng = np.random.default_rng(3)
    xy = rng.uniform([-120, 30], [-110, 40], size=(40, 2))
    pts = shapely.points(xy)
    values = [rng.integers(0, 100, 40).astype("int64"), np.array([f"n{i}" for i in range(40)], dtype=object),
              rng.uniform(0, 1, 40)]
    polys = shapely.buffer(pts[:10], 0.1)
    mixed = np.array([*polys[:5], *[shapely.MultiPolygon([p]) for p in polys[5:]]], dtype=object)
    out = {}
    gpkg = tmp_path / "two.gpkg"
    pyogrio.raw.write(str(gpkg), shapely.to_wkb(pts), values, fields=["k", "name", "score"], geometry_type="Point",
                      crs="EPSG:4326", driver="GPKG", layer="points")
    pyogrio.raw.write(str(gpkg), shapely.to_wkb(mixed), [np.arange(10, dtype="int64")], fields=["k"],
                      geometry_type="Unknown", crs="EPSG:4326", driver="GPKG", layer="areas", append=True)
    out["gpkg"] = gpkg
    fgb = tmp_path / "pts.fgb"
    pyogrio.raw.write(str(fgb), shapely.to_wkb(pts), values, fields=["k", "name", "score"], geometry_type="Point",
                      crs="EPSG:26911", driver="FlatGeobuf")
    out["fgb"] = fgb
    kml = tmp_path / "pts.kml"
    pyogrio.raw.write(str(kml), shapely.to_wkb(pts), [values[1]], fields=["Name"], geometry_type="Point",
                      crs="EPSG:4326", driver="KML")
    out["kml"] = kml
    wkt = tmp_path / "wkt.csv"
    wkt.write_text("id,label,WKT\n" + "".join(f'{i},L{i},"{shapely.to_wkt(p)}"\n' for i, p in enumerate(polys)))
    out["csv_wkt"] = wkt
    lonlat = tmp_path / "lonlat.csv"
    lonlat.write_text("name,Longitude,Latitude,v\n" + "".join(f"n{i},{float(x)!r},{float(y)!r},{i}\n" for i, (x, y) in enumerate(xy)))
    out["csv_lonlat"] = lonlat
    out["xy"] = xy  # type: ignore[assignment]
    return out


@pytest.mark.parametrize("storage", ["hosted", "file"])
def test_geopackage_two_layers_needs_sublayer_and_normalises(tenant, reader, written, storage):
    data = written["gpkg"].read_bytes()
    with pytest.raises(InvalidParameterValue, match="areas, points|points, areas"):
        svc.layer_ingest(tenant_id=tenant.pk, collection_id="two", title="t", data=data, filename="two.gpkg",
                         storage=storage)
    assert not Layer.objects.filter(collection_id="two").exists()
    pts = svc.layer_ingest(tenant_id=tenant.pk, collection_id=f"pts_{storage}", title="p", data=data,
                           filename="two.gpkg", storage=storage, sublayer="points")
    _check_against(reader, pts.collection_id, *_reference(str(written["gpkg"]), "points"))
    areas = svc.layer_ingest(tenant_id=tenant.pk, collection_id=f"areas_{storage}", title="a", data=data,
                             filename="two.gpkg", storage=storage, sublayer="areas")
    assert areas.geometry_type == "MultiPolygon"  # Polygon + MultiPolygon
    feats = _all(reader, areas.collection_id).features["features"]
    assert {f["geometry"]["type"] for f in feats} == {"MultiPolygon"}
    _check_against(reader, areas.collection_id, *_reference(str(written["gpkg"]), "areas"))


@pytest.mark.parametrize("storage", ["hosted", "file"])
@pytest.mark.parametrize("kind", ["fgb", "kml", "csv_wkt", "csv_lonlat"])
def test_written_formats(tenant, reader, written, kind, storage):
    srid = 4326 if kind == "csv_wkt" else None
    layer = svc.layer_ingest(tenant_id=tenant.pk, collection_id=f"{kind}_{storage}".replace("_", "-"), title="x",
                             data=written[kind].read_bytes(), filename="data.bin", storage=storage, srid=srid)
    expected_srid = 26911 if kind == "fgb" else 4326
    assert layer.srid == expected_srid
    if kind.startswith("csv"):
        # GeoDjango's DataSource needs the CSV driver's open options: compare with plain Python.
        import csv

        rows = list(csv.DictReader(io.StringIO(written[kind].read_text())))
        feats = _all(reader, layer.collection_id).features["features"]
        assert len(feats) == len(rows)
        for f, row in zip(feats, rows, strict=True):
            geom = shapely.geometry.shape(f["geometry"])
            if kind == "csv_wkt":
                assert geom.equals_exact(shapely.from_wkt(row["WKT"]), 1e-12)
                assert f["properties"]["label"] == row["label"] and f["properties"]["id"] == int(row["id"])
            else:
                assert (geom.x, geom.y) == (float(row["Longitude"]), float(row["Latitude"]))
                assert f["properties"]["v"] == int(row["v"]) and "Longitude" not in f["properties"]
    else:
        _check_against(reader, layer.collection_id, *_reference(str(written[kind])))


def test_csv_without_crs_needs_srid(tenant, written):
    with pytest.raises(InvalidParameterValue, match="srid"):
        svc.layer_ingest(tenant_id=tenant.pk, collection_id="nocrs", title="x",
                         data=written["csv_wkt"].read_bytes(), filename="w.csv")
    assert not Layer.objects.filter(collection_id="nocrs").exists()


def test_refusals(tenant, settings):
    with pytest.raises(UnsupportedMediaType):
        svc.layer_ingest(tenant_id=tenant.pk, collection_id="png", title="x",
                         data=b"\x89PNG\r\n\x1a\n" + b"\0" * 64, filename="a.geojson")
    with pytest.raises(InvalidParameterValue, match="collection id"):
        svc.layer_ingest(tenant_id=tenant.pk, collection_id="1bad id", title="x", data=b"{}", filename="a")
    settings.HONUA = {**settings.HONUA, "LAYER_MAX_BYTES": 10}
    with pytest.raises(PayloadTooLarge):
        svc.layer_ingest(tenant_id=tenant.pk, collection_id="big", title="x", data=b"x" * 11, filename="a")
    settings.HONUA = {**settings.HONUA, "LAYER_MAX_BYTES": 10**9, "LAYER_MAX_FEATURES": 5}
    path = dataset_file("baltim/baltimore.geojson")
    with pytest.raises(PayloadTooLarge, match="at most 5"):
        svc.layer_ingest(tenant_id=tenant.pk, collection_id="many", title="x", data=path.read_bytes(), filename="b")
    assert not Layer.objects.exists()


def test_failing_ingest_leaves_no_row_and_no_table(tenant, monkeypatch):
    data = dataset_file("baltim/baltimore.geojson").read_bytes()
    svc.layer_ingest(tenant_id=tenant.pk, collection_id="taken", title="x", data=data, filename="b")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'honua_data'")
        before = cur.fetchone()[0]
    # The row's insert fails after the table and its rows were written (a duplicate id that
    # slipped past the early check): both go.
    monkeypatch.setattr(svc, "_check_free", lambda tenant_id, collection_id: None)
    with pytest.raises(IntegrityError):
        svc.layer_ingest(tenant_id=tenant.pk, collection_id="taken", title="x", data=data, filename="b")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'honua_data'")
        assert cur.fetchone()[0] == before
    assert Layer.objects.filter(collection_id="taken").count() == 1


def test_bbox_reads_agree_between_hosted_and_file(tenant, reader):
    data = _zip_shapefile("virginia/vautm17n.shp")
    for storage in ("hosted", "file"):
        svc.layer_ingest(tenant_id=tenant.pk, collection_id=f"v{storage}", title="v", data=data, filename="v.zip",
                         storage=storage)
    box = [-79.0, 37.0, -77.5, 38.5]
    hosted = layer_items(principal=reader, collection_id="vhosted", bbox=box, limit=1000)
    filed = layer_items(principal=reader, collection_id="vfile", bbox=box, limit=1000)
    assert 0 < hosted.number_matched == filed.number_matched < 136
    assert [f["id"] for f in hosted.features["features"]] == [f["id"] for f in filed.features["features"]]
    # independent: the polygons (reprojected to 4326 by pyproj) that intersect the box
    from pyproj import Transformer

    geoms, _ = _reference(str(dataset_file("virginia/vautm17n.shp")))
    tr = Transformer.from_crs(32617, 4326, always_xy=True)
    lonlat = [shapely.transform(g, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1]))) for g in geoms]
    expected = [i + 1 for i, g in enumerate(lonlat) if g.intersects(shapely.box(*box))]
    got = [f["id"] for f in hosted.features["features"]]
    assert len(set(got) ^ set(expected)) <= 2  # the box's edges are reprojected straight lines
    # output in 4326
    first = hosted.features["features"][0]["geometry"]["coordinates"][0][0][0]
    assert -84 < first[0] < -75
    # paging
    page = layer_items(principal=reader, collection_id="vfile", bbox=box, limit=2, offset=1)
    assert [f["id"] for f in page.features["features"]] == got[1:3] and page.number_matched == len(got)


def test_table_layers_allow_list(tenant, reader, settings):
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE public.roads (rid bigint PRIMARY KEY, name text, lanes smallint, "
                    "opened date, geom geometry(LineString, 3857))")
        cur.execute("INSERT INTO public.roads VALUES (1, 'A', 2, '2020-01-01', "
                    "ST_GeomFromText('LINESTRING(0 0, 1000 1000)', 3857)), (2, 'B', NULL, NULL, "
                    "ST_GeomFromText('LINESTRING(0 0, -1000 500)', 3857))")
        cur.execute("CREATE TABLE public.nogeom (id int PRIMARY KEY, name text)")
    with pytest.raises(PermissionDenied, match="allow-list"):
        svc.layer_register_table(tenant_id=tenant.pk, collection_id="roads", title="R", table="public.roads")
    settings.HONUA = {**settings.HONUA, "LAYER_TABLES": ["public.*"]}
    with pytest.raises(InvalidParameterValue, match="no geometry column"):
        svc.layer_register_table(tenant_id=tenant.pk, collection_id="ng", title="R", table="public.nogeom")
    layer = svc.layer_register_table(tenant_id=tenant.pk, collection_id="roads", title="R", table="public.roads")
    assert (layer.srid, layer.geometry_type, layer.id_column, layer.feature_count) == (3857, "LineString", "rid", 2)
    assert {f["name"]: f["type"] for f in layer.fields} == {"name": "string", "lanes": "integer", "opened": "string"}
    page = layer_items(principal=reader, collection_id="roads", out_srid=None)
    assert page.features["features"][0]["properties"] == {"name": "A", "lanes": 2, "opened": "2020-01-01"}
    assert page.features["features"][1]["geometry"]["coordinates"] == [[0.0, 0.0], [-1000.0, 500.0]]
    assert AuditEvent.objects.filter(action="layer.register", object_id=str(layer.pk)).exists()


def test_honua_and_system_schemas_are_never_table_layers(tenant, settings):
    """Even an allow-list of everything cannot register another tenant's hosted table, the
    tier's functions' schema or a system catalog as a table layer."""
    other = Tenant.objects.create(slug="other-co", name="Other")
    hosted = svc.layer_publish(tenant_id=other.pk, collection_id="secret", title="S", features={
        "type": "FeatureCollection", "srid": 4326, "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}]})
    settings.HONUA = {**settings.HONUA, "LAYER_TABLES": [
        f"honua_data.{hosted.table_name}", "honua_data.*", "honua_gp.*", "pg_catalog.*", "information_schema.*"]}
    for table in (f"honua_data.{hosted.table_name}", "pg_catalog.pg_class", "information_schema.tables"):
        with pytest.raises(PermissionDenied, match="allow-list"):
            svc.layer_register_table(tenant_id=tenant.pk, collection_id="stolen", title="X", table=table)
    assert not Layer.objects.filter(tenant=tenant, collection_id="stolen").exists()


def test_publish_delete_and_expiry(tenant, reader):
    fc = {"type": "FeatureCollection", "srid": 4326, "fields": [{"name": "n", "type": "integer"}], "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"n": 1, "s": "a"}},
        {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": [[3, 4]]}, "properties": {"n": 2}},
    ]}
    layer = svc.layer_publish(tenant_id=tenant.pk, collection_id="result", title="R", features=fc, ttl_seconds=60)
    assert layer.geometry_type == "MultiPoint" and layer.expires_at is not None and _table_exists(layer.table_name)
    page = layer_items(principal=reader, collection_id="result")
    assert [f["properties"] for f in page.features["features"]] == [{"n": 1, "s": "a"}, {"n": 2, "s": None}]
    table = layer.table_name
    Layer.objects.filter(pk=layer.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(NoSuchLayer):
        layer_for_principal(principal=reader, collection_id="result")
    assert svc.layers_expire() == 1
    assert not _table_exists(table) and not Layer.objects.filter(pk=layer.pk).exists()
    assert AuditEvent.objects.filter(action="layer.expire").exists()
    # delete: a file layer's artifact goes with it
    filed = svc.layer_ingest(tenant_id=tenant.pk, collection_id="f", title="f", storage="file",
                             data=dataset_file("baltim/baltimore.geojson").read_bytes(), filename="b.geojson")
    artifact_id = filed.artifact_id
    svc.layer_delete(tenant_id=tenant.pk, collection_id="f")
    assert not Artifact.objects.filter(pk=artifact_id).exists()
    with pytest.raises(NoSuchLayer):
        svc.layer_delete(tenant_id=tenant.pk, collection_id="f")


def test_tenant_isolation_of_selectors(tenant, reader):
    other = Tenant.objects.create(slug="other", name="Other")
    data = dataset_file("baltim/baltimore.geojson").read_bytes()
    svc.layer_ingest(tenant_id=other.pk, collection_id="secret", title="s", data=data, filename="b")
    svc.layer_ingest(tenant_id=tenant.pk, collection_id="mine", title="m", data=data, filename="b")
    assert [i.id for i in layers_for_principal(principal=reader)] == ["mine"]
    for call in (layer_for_principal, layer_items, layer_source_for):
        with pytest.raises(NoSuchLayer) as err:
            call(principal=reader, collection_id="secret")
        with pytest.raises(NoSuchLayer) as err2:
            call(principal=reader, collection_id="nothing")
        assert err.value.message.replace("secret", "X") == err2.value.message.replace("nothing", "X")
    source, count = layer_source_for(principal=reader, collection_id="mine", bbox=[900, 510, 950, 560])
    assert 0 < count < 211 and len(source_read(source)) == count


def test_ingest_upload_roles(tenant):
    editor = Principal(tenant="demo", username="ed", roles=("editor",))
    viewer = Principal(tenant="demo", username="vi", roles=("viewer",))
    item = uploads.upload_create(principal=editor, name="b.geojson",
                                 data=dataset_file("baltim/baltimore.geojson").read_bytes())
    with pytest.raises(PermissionDenied):
        svc.layer_ingest_upload(principal=viewer, item_id=item.id, collection_id="u", title="u")
    info = svc.layer_ingest_upload(principal=editor, item_id=item.id, collection_id="u", title="u")
    assert info.feature_count == 211 and info.storage == "postgis" and "GeoJSON" in info.source


def test_ingest_100k_points_hosted(tenant, reader, tmp_path, capsys):
    rng = np.random.default_rng(0)
    xy = rng.uniform([-10, 40], [10, 60], size=(100_000, 2))
    path = tmp_path / "100k.gpkg"
    pyogrio.raw.write(str(path), shapely.to_wkb(shapely.points(xy)), [np.arange(100_000, dtype="int64"), rng.uniform(size=100_000)],
                      fields=["i", "v"], geometry_type="Point", crs="EPSG:4326", driver="GPKG", layer="p")
    data = path.read_bytes()
    start = time.perf_counter()
    layer = svc.layer_ingest(tenant_id=tenant.pk, collection_id="big", title="b", data=data, filename="100k.gpkg")
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\ningest of 100,000 points (GeoPackage, hosted): {elapsed:.2f} s")
    assert layer.feature_count == 100_000
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*), sum(i), ST_X(geom), ST_Y(geom) FROM honua_data.{layer.table_name} "
                    "WHERE fid = 12345 GROUP BY geom")
        row = cur.fetchone()
    assert row[2:] == pytest.approx(tuple(xy[12344]))
    assert elapsed < 30


def test_filters_agree_between_hosted_and_file(tenant, reader):
    data = _zip_shapefile("virginia/vautm17n.shp")
    for storage in ("hosted", "file"):
        svc.layer_ingest(tenant_id=tenant.pk, collection_id=f"q{storage}", title="v", data=data, filename="v.zip",
                         storage=storage)
    _, attrs = _reference(str(dataset_file("virginia/vautm17n.shp")))
    numeric, text = "Key", "NAME"
    values = sorted(a[numeric] for a in attrs)
    median = values[len(values) // 2]
    cases = [
        (f"{numeric} > {median!r}", [i + 1 for i, a in enumerate(attrs) if a[numeric] > median]),
        (f"{text} LIKE 'A%' OR {numeric} <= {values[3]!r}",
         [i + 1 for i, a in enumerate(attrs) if a[text].startswith("A") or a[numeric] <= values[3]]),
    ]
    for text_filter, expected in cases:
        for storage in ("hosted", "file"):
            page = layer_items(principal=reader, collection_id=f"q{storage}", filter=text_filter, limit=1000)
            assert [f["id"] for f in page.features["features"]] == expected, (storage, text_filter)
            assert page.number_matched == len(expected)
    with pytest.raises(InvalidParameterValue, match="no property 'nope'.*its properties"):
        layer_items(principal=reader, collection_id="qhosted", filter="nope = 1")
    with pytest.raises(InvalidParameterValue, match="filter at position"):
        layer_items(principal=reader, collection_id="qfile", filter=f"{numeric} >")


def test_file_layer_in_s3_is_read_through_a_checked_local_copy(tenant, reader, s3_store, settings, tmp_path):
    """With the S3 artifact store a file layer's bytes live in S3; GDAL reads a local copy
    named by sha256, fetched once, and a corrupted copy is fetched again."""
    settings.DATA_DIR = tmp_path / "data"
    path = dataset_file("baltim/baltimore.geojson")
    data = path.read_bytes()
    layer = svc.layer_ingest(tenant_id=tenant.pk, collection_id="in_s3", title="S3", data=data,
                             filename="b.json", storage="file")
    assert layer.artifact.store == "s3"
    key = layer.artifact.key
    assert s3_store.aws.client("s3").head_object(Bucket=s3_store.bucket, Key=key)["ContentLength"] == len(data)
    geoms, attrs = _reference(str(path))
    _check_against(reader, layer.collection_id, geoms, attrs)
    copy = tmp_path / "data" / "cache" / "artifacts" / layer.artifact.sha256
    assert copy.read_bytes() == data
    copy.write_bytes(b"{}")  # a damaged copy (wrong size) is not trusted
    _check_against(reader, layer.collection_id, geoms, attrs)
    assert copy.read_bytes() == data
