"""Uploads: one-shot and multi-part, checksums, limits, content sniffing, tenant isolation,
deletion, and uploaded files reaching executors through ``run_submit``."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile

import orjson
import pytest

from controlplane.contracts import ExecutionMode, ExecutionRequest, Principal, RunStatus, Surface
from controlplane.exceptions import (
    InvalidParameterValue,
    InvalidRequest,
    NoSuchUpload,
    PayloadTooLarge,
    UnsupportedMediaType,
    UploadNotCommitted,
)
from controlplane.models import Artifact, AuditEvent, ProcessRun, Tenant, UploadItem, UploadPart
from controlplane.services import uploads as svc
from controlplane.services.artifacts import ArtifactGone, artifact_read
from controlplane.services.execution import run_submit
from controlplane.services.mediatypes import media_type_sniff
from controlplane.tasks import run_execute

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("honua_catalog")]

GEOJSON = orjson.dumps(
    {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"n": 1}, "geometry": {"type": "Point", "coordinates": [1, 2]}}]}
)
CSV = b"id,name,x,y\n1,a,1.5,2.5\n2,b,3.5,4.5\n3,c,5.5,6.5\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "artifacts"


@pytest.fixture(params=["local", "s3"])
def store(request) -> str:
    """The test runs once with each artifact store (S3: moto on loopback, tests/aws.py)."""
    if request.param == "s3":
        request.getfixturevalue("s3_store")
    return request.param


def _stored(artifact: Artifact) -> bool:
    """Whether the artifact's store still has its bytes."""
    try:
        artifact_read(artifact)
    except ArtifactGone:
        return False
    return True


@pytest.fixture
def other() -> Principal:
    Tenant.objects.get_or_create(slug="other-tenant", defaults={"name": "Other"})
    return Principal(tenant="other-tenant", username="intruder")


def _limit(settings, **values) -> None:
    settings.HONUA = {**settings.HONUA, **values}


def test_one_shot_upload_is_committed_with_sniffed_type(principal, store):
    item = svc.upload_create(principal=principal, name="C:\\data\\points.bin", data=GEOJSON, description="pts")
    assert re.fullmatch(r"i[0-9a-f]{32}", item.id)
    assert item.committed and item.item_name == "points.bin" and item.size == len(GEOJSON)
    assert item.media_type == "application/geo+json"  # by content, not by the ".bin" name
    assert item.sha256 == hashlib.sha256(GEOJSON).hexdigest()
    assert item.artifact.store == store and item.artifact.expires_at == item.expires_at
    assert svc.upload_bytes(principal=principal, item_id=item.id) == GEOJSON
    # Esri prints item ids as "i" + a dashed GUID; both spellings find it.
    dashed = f"i{item.id[1:9]}-{item.id[9:13]}-{item.id[13:17]}-{item.id[17:21]}-{item.id[21:]}"
    assert svc.upload_get(principal=principal, item_id=dashed.upper()).id == item.id
    assert AuditEvent.objects.filter(action="upload.create", object_id=item.id).exists()


def test_uploads_info_reports_limits(settings):
    _limit(settings, UPLOAD_MAX_BYTES=5 * 1024 * 1024)
    info = svc.uploads_info()
    assert info["maxUploadFileSize"] == 5 and info["maxUploadFileSizeBytes"] == 5 * 1024 * 1024
    assert {"zip", "csv", "geojson", "tif", "gpkg", "kml"} <= set(info["allowedUploadFileTypes"])
    assert "html" not in info["allowedUploadFileTypes"]


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_multi_part_upload_with_checksum(principal, store, algorithm):
    first, second = CSV[:10], CSV[10:]
    item = svc.upload_register(principal=principal, name="table.csv", description="parts")
    assert not item.committed
    with pytest.raises(UploadNotCommitted):
        svc.upload_bytes(principal=principal, item_id=item.id)
    svc.upload_part(principal=principal, item_id=item.id, part_number=2, data=second)
    svc.upload_part(principal=principal, item_id=item.id, part_number=1, data=b"wrong")
    svc.upload_part(principal=principal, item_id=item.id, part_number=1, data=first)  # replaces
    assert svc.upload_part_numbers(principal=principal, item_id=item.id) == [1, 2]
    checksum = hashlib.new(algorithm, CSV).hexdigest()
    done = svc.upload_commit(principal=principal, item_id=item.id, parts=[1, 2], checksum=checksum.upper())
    assert done.committed and done.size == len(CSV) and done.media_type == "text/csv"
    assert svc.upload_bytes(principal=principal, item_id=item.id) == CSV
    assert not UploadPart.objects.filter(upload_id=item.id).exists()
    with pytest.raises(InvalidRequest):
        svc.upload_part(principal=principal, item_id=item.id, part_number=3, data=b"x")


def test_bad_checksum_keeps_the_parts_and_parts_join_by_number(principal):
    item = svc.upload_register(principal=principal, name="t.csv")
    svc.upload_part(principal=principal, item_id=item.id, part_number=2, data=CSV[20:])
    svc.upload_part(principal=principal, item_id=item.id, part_number=1, data=CSV[:20])
    with pytest.raises(InvalidParameterValue, match="checksum mismatch"):
        svc.upload_commit(principal=principal, item_id=item.id, checksum=hashlib.md5(b"other").hexdigest())
    with pytest.raises(InvalidParameterValue, match="hex MD5 or SHA-256"):
        svc.upload_commit(principal=principal, item_id=item.id, checksum="not-a-digest")
    with pytest.raises(InvalidParameterValue, match="no part 3"):
        svc.upload_commit(principal=principal, item_id=item.id, parts=[1, 3])
    assert not svc.upload_get(principal=principal, item_id=item.id).committed
    done = svc.upload_commit(principal=principal, item_id=item.id, checksum=hashlib.sha256(CSV).hexdigest())
    assert svc.upload_bytes(principal=principal, item_id=done.id) == CSV
    with pytest.raises(InvalidRequest, match="already committed"):
        svc.upload_commit(principal=principal, item_id=item.id)


def test_size_limit(principal, settings):
    _limit(settings, UPLOAD_MAX_BYTES=40)
    with pytest.raises(PayloadTooLarge) as err:
        svc.upload_create(principal=principal, name="big.csv", data=CSV)
    assert err.value.status == 413
    item = svc.upload_register(principal=principal, name="big.csv")
    svc.upload_part(principal=principal, item_id=item.id, part_number=1, data=CSV[:30])
    with pytest.raises(PayloadTooLarge):
        svc.upload_part(principal=principal, item_id=item.id, part_number=2, data=CSV[30:])
    with pytest.raises(InvalidParameterValue):
        svc.upload_part(principal=principal, item_id=item.id, part_number=0, data=b"x")
    assert not UploadItem.objects.filter(item_name="big.csv", committed=True).exists()


def _zip(names: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in names.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "media"),
    [
        (GEOJSON, "application/geo+json"),
        (b'\xef\xbb\xbf{"features": [], "geometryType": "esriGeometryPoint"}', "application/json"),
        (CSV, "text/csv"),
        (b"just some words\nand more words\n", "text/plain"),
        (PNG, "image/png"),
        (b"II*\x00" + b"\x00" * 32, "image/tiff"),
        (b"MM\x00*" + b"\x00" * 32, "image/tiff"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "image/jpeg"),
        (b"%PDF-1.7\n", "application/pdf"),
        (_zip({"roads.shp": b"x", "roads.dbf": b"y"}), "application/zip"),
        (_zip({"doc.kml": b"<kml/>"}), "application/vnd.google-earth.kmz"),
        (b"SQLite format 3\x00" + b"\x00" * 52 + b"GPKG" + b"\x00" * 28, "application/geopackage+sqlite3"),
        (b"SQLite format 3\x00" + b"\x00" * 100, "application/vnd.sqlite3"),
        (b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"/>', "application/vnd.google-earth.kml+xml"),
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "text/html"),
        (b"\x7fELF\x02\x01\x01", "application/x-executable"),
        (b"MZ is a text file that starts like an executable.\n", "text/plain"),
        (b"\x00\x01\x02\x03binary", "application/octet-stream"),
    ],
)
def test_media_type_is_sniffed_from_content(data, media):
    assert media_type_sniff(data) == media


def test_refused_types_and_names_do_not_matter(principal):
    png = svc.upload_create(principal=principal, name="looks-like.csv", data=PNG)
    assert png.media_type == "image/png"
    for data in (b"<html><body>hi</body></html>", b"\x7fELF\x02\x01\x01", b"\x00\x01\x02binary"):
        with pytest.raises(UnsupportedMediaType) as err:
            svc.upload_create(principal=principal, name="innocent.csv", data=data)
        assert err.value.status == 415


def test_another_tenant_gets_no_such_upload(principal, other):
    item = svc.upload_create(principal=principal, name="pts.geojson", data=GEOJSON)
    registered = svc.upload_register(principal=principal, name="later.csv")
    for call in (
        lambda: svc.upload_get(principal=other, item_id=item.id),
        lambda: svc.upload_bytes(principal=other, item_id=item.id),
        lambda: svc.upload_delete(principal=other, item_id=item.id),
        lambda: svc.upload_part(principal=other, item_id=registered.id, part_number=1, data=CSV),
        lambda: svc.upload_commit(principal=other, item_id=registered.id),
        lambda: run_submit(_echo(other, item.id)),
    ):
        with pytest.raises(NoSuchUpload) as err:
            call()
        assert err.value.code == "no-such-upload" and err.value.status == 404
    assert svc.upload_bytes(principal=principal, item_id=item.id) == GEOJSON
    with pytest.raises(NoSuchUpload):
        svc.upload_get(principal=principal, item_id="not-an-id")


def test_delete_removes_the_bytes(principal, store, django_capture_on_commit_callbacks):
    item = svc.upload_create(principal=principal, name="pts.geojson", data=GEOJSON)
    assert item.artifact.store == store
    parts = svc.upload_register(principal=principal, name="p.csv")
    svc.upload_part(principal=principal, item_id=parts.id, part_number=1, data=CSV)
    part = UploadPart.objects.get(upload_id=parts.id).artifact
    assert _stored(item.artifact) and _stored(part) and part.store == store
    with django_capture_on_commit_callbacks(execute=True):
        svc.upload_delete(principal=principal, item_id=item.id)
        svc.upload_delete(principal=principal, item_id=parts.id)
    assert not _stored(item.artifact) and not _stored(part)
    assert not UploadItem.objects.filter(id__in=[item.id, parts.id]).exists()
    assert not Artifact.objects.filter(id=item.artifact_id).exists()
    assert AuditEvent.objects.filter(action="upload.delete", object_id=item.id).exists()
    with pytest.raises(NoSuchUpload):
        svc.upload_bytes(principal=principal, item_id=item.id)


def test_expired_uploads_are_gone_and_cleaned(principal, store, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    item = svc.upload_create(principal=principal, name="pts.geojson", data=GEOJSON)
    assert _stored(item.artifact) and item.artifact.store == store
    UploadItem.objects.filter(id=item.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(NoSuchUpload):
        svc.upload_get(principal=principal, item_id=item.id)
    with django_capture_on_commit_callbacks(execute=True):
        assert svc.uploads_expire() == 1
    assert not _stored(item.artifact)


def _echo(principal, item_id, mode=None) -> ExecutionRequest:
    return ExecutionRequest(
        process_id="echo",
        inputs={"string_input": "x", "binary_input": {"upload": item_id}},
        principal=principal,
        surface=Surface.GPSERVER,
        mode=mode,
    )


@pytest.mark.django_db(transaction=True)  # sync runs execute on the inline pool's own connection
def test_an_uploaded_file_reaches_the_executor_as_bytes(principal, store):
    item = svc.upload_create(principal=principal, name="pts.geojson", data=GEOJSON)
    result = run_submit(_echo(principal, item.id))
    assert result.status is RunStatus.SUCCEEDED
    echoed = result.outputs["binary_input"]
    assert base64.b64decode(echoed["value"]) == GEOJSON
    assert echoed["media_type"] == "application/geo+json" and echoed["name"] == "pts.geojson"
    stored = ProcessRun.objects.get(id=result.run_id).inputs["binary_input"]
    assert stored == {
        "artifact": str(item.artifact_id), "media_type": "application/geo+json",
        "size": len(GEOJSON), "name": "pts.geojson", "upload": item.id,
    }


def test_an_uploaded_file_reaches_a_queued_run_too(principal, store):
    item = svc.upload_create(principal=principal, name="t.csv", data=CSV)
    result = run_submit(_echo(principal, item.id, mode=ExecutionMode.ASYNC))
    assert run_execute(str(result.run_id)) == "done"
    run = ProcessRun.objects.get(id=result.run_id)
    assert run.status == "succeeded"
    assert base64.b64decode(run.outputs["binary_input"]["value"]) == CSV


def test_uploads_must_be_committed_and_count_towards_the_process_limit(principal, settings):
    registered = svc.upload_register(principal=principal, name="later.csv")
    with pytest.raises(UploadNotCommitted):
        run_submit(_echo(principal, registered.id))
    item = svc.upload_create(principal=principal, name="t.csv", data=CSV)
    from controlplane.models import ProcessDefinition
    from controlplane.services.policy import policy_cache_clear

    ProcessDefinition.objects.filter(process_id="echo", is_current=True).update(limits={"max_bytes": 10})
    policy_cache_clear()
    with pytest.raises(PayloadTooLarge):
        run_submit(_echo(principal, item.id))
    assert not ProcessRun.objects.filter(process_id="echo", surface="gpserver").exists()


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_geojson_is_a_feature_input(principal, store):
    square = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}},
           "features": [{"type": "Feature", "properties": {"n": 1}, "geometry": square}]}
    item = svc.upload_create(principal=principal, name="square.json", data=orjson.dumps(doc))
    request = ExecutionRequest(
        process_id="centroid", inputs={"features": {"upload": item.id}}, principal=principal,
        surface=Surface.GPSERVER,
    )
    result = run_submit(request)
    assert result.status is RunStatus.SUCCEEDED, result.error
    out = result.outputs["result"]
    assert out["srid"] == 3857 and out["features"][0]["geometry"]["coordinates"][:2] == [1.0, 1.0]
    run = ProcessRun.objects.get(id=result.run_id)
    assert run.feature_count == 1 and run.inputs["features"]["srid"] == 3857  # admitted as features
    csv_item = svc.upload_create(principal=principal, name="t.csv", data=CSV)
    with pytest.raises(InvalidParameterValue, match="GeoJSON"):
        run_submit(ExecutionRequest(
            process_id="centroid", inputs={"features": {"upload": csv_item.id}}, principal=principal,
            surface=Surface.GPSERVER,
        ))
