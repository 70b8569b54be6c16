"""GPServer uploads: info, one-shot upload, register / uploadPart / commit, item, download,
delete, and an uploaded item used as a GPDataFile input ({"itemID"})."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.gpserver.support import ANALYSIS, GEOMETRY, assert_error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gp")]

UPLOADS = f"{ANALYSIS}/uploads"
CSV = b"name,x,y\na,1,2\nb,3,4\n"


def _post(client, path, **fields):
    response = client.post(path, {"f": "json", **fields})
    assert response.status_code == 200, response.status_code
    return json.loads(response.content)


def _upload(client, data=CSV, name="points.csv", **fields):
    return _post(client, f"{UPLOADS}/upload", file=SimpleUploadedFile(name, data, "text/csv"), **fields)


def test_info(api):
    info = api.get(f"{UPLOADS}/info")
    assert isinstance(info["maxUploadFileSize"], int) and info["maxUploadFileSize"] >= 1
    assert "csv" in info["allowedUploadFileTypes"]
    assert api.get(UPLOADS) == info
    assert_error(api.get(f"{GEOMETRY.replace('Geometry', 'Nope')}/uploads/info"), 404)


def test_one_shot_upload_item_download_delete(api, client):
    answer = _upload(client, description="two points")
    assert answer["success"] is True
    item = answer["item"]
    assert item["itemID"].startswith("i") and item["itemName"] == "points.csv"
    assert item["committed"] is True and item["description"] == "two points" and item["size"] == len(CSV)
    assert isinstance(item["date"], int)
    assert api.get(f"{UPLOADS}/{item['itemID']}") == item
    download = client.get(f"{UPLOADS}/{item['itemID']}/download")
    assert download.status_code == 200 and b"".join(download.streaming_content) == CSV
    assert download["Content-Length"] == str(len(CSV)) and download["Content-Type"] == "text/csv"
    assert download["Content-Disposition"] == 'attachment; filename="points.csv"'
    # Uploads belong to the tenant, not to one service.
    assert api.get(f"{GEOMETRY}/uploads/{item['itemID']}")["itemID"] == item["itemID"]
    assert api.post(f"{UPLOADS}/{item['itemID']}/delete") == {"success": True}
    assert_error(api.get(f"{UPLOADS}/{item['itemID']}"), 404)


def test_multi_part_upload(api, client):
    item = api.post(f"{UPLOADS}/register", itemName="big.csv", description="in parts")["item"]
    assert item["committed"] is False and item["itemName"] == "big.csv"
    halves = CSV[:10], CSV[10:]
    for number, part in ((2, halves[1]), (1, halves[0])):
        answer = _post(client, f"{UPLOADS}/{item['itemID']}/uploadPart",
                       file=SimpleUploadedFile("blob", part), partNumber=str(number))
        assert answer["success"] is True and answer["item"]["committed"] is False
    not_yet = client.get(f"{UPLOADS}/{item['itemID']}/download", {"f": "json"})
    assert_error(json.loads(not_yet.content), 400, "not committed")
    committed = api.post(f"{UPLOADS}/{item['itemID']}/commit", parts="1,2",
                         checksum=hashlib.md5(CSV, usedforsecurity=False).hexdigest())
    assert committed["success"] is True and committed["item"]["committed"] is True
    assert b"".join(client.get(f"{UPLOADS}/{item['itemID']}/download").streaming_content) == CSV


def test_upload_errors(api, client):
    assert_error(api.post(f"{UPLOADS}/upload"), 400, "file")
    assert_error(_upload(client, b"MZ\x90\x00\x03" + b"\x00" * 60, "tool.exe"), 415)
    item = api.post(f"{UPLOADS}/register", itemName="x.csv")["item"]
    assert_error(api.post(f"{UPLOADS}/{item['itemID']}/uploadPart", partNumber="1"), 400, "file")
    assert_error(_post(client, f"{UPLOADS}/{item['itemID']}/uploadPart", file=SimpleUploadedFile("b", b"x"),
                       partNumber="zero"), 400)
    assert_error(api.post(f"{UPLOADS}/{item['itemID']}/commit", parts="1"), 400)
    assert_error(api.get(f"{UPLOADS}/i{'0' * 32}"), 404)


def test_an_uploaded_item_as_a_data_file_input(api, client):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    item = _post(client, f"{UPLOADS}/upload", file=SimpleUploadedFile("blob.png", data))["item"]
    doc = api.post(f"{ANALYSIS}/echo/execute", string_input="with a file",
                   binary_input=json.dumps({"itemID": item["itemID"]}))
    out = {r["paramName"]: r for r in doc["results"]}["output_binary_input"]
    assert out["dataType"] == "GPDataFile"
    url = out["value"]["url"]
    assert url.startswith("http://testserver/")
    assert client.get(url.replace("http://testserver", "")).content == data
    job = api.post(f"{ANALYSIS}/echo/submitJob", binary_input=json.dumps({"itemID": item["itemID"]}),
                   string_input="x")["jobId"]
    from controlplane.tasks import run_execute
    from gpserver import translate

    run_execute(str(translate.run_id_of(job)))
    assert api.get(f"{ANALYSIS}/echo/jobs/{job}/inputs/binary_input")["value"] == {"itemID": item["itemID"]}
    assert_error(api.post(f"{ANALYSIS}/echo/execute", string_input="x",
                          binary_input=json.dumps({"itemID": "i" + "1" * 32})), 404)
