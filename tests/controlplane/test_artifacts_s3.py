"""The S3 artifact store against moto on loopback (tests/aws.py): bytes, checksums and
encryption on the object, presigned links that download and expire, outputs spilled to S3
through both APIs, uploads in S3 as file inputs, expiry, readiness and the lifecycle rule."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from controlplane.models import Artifact, ProcessRun, Tenant, UploadItem
from controlplane.services.artifacts import (
    LIFECYCLE_RULE_ID,
    ArtifactGone,
    artifact_create,
    artifact_link,
    artifact_read,
    artifact_stream,
)
from controlplane.services.aws import aws_client
from controlplane.services.runs import artifacts_delete
from controlplane.tasks import results_expire
from tests.gpserver.support import ANALYSIS
from tests.ogcprocesses.support import API

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("honua_catalog")]

DATA = bytes(range(256)) * 41  # 10,496 bytes, every byte value
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def _tenant_id() -> int:
    return Tenant.objects.get(slug="demo").pk


def _missing(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        return exc.response["Error"]["Code"] in {"404", "NoSuchKey"}
    return False


def _fetch(url: str) -> tuple[int, bytes, Message]:
    """A plain HTTP GET, as a client given the link would make it."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback moto)
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


# --- the store --------------------------------------------------------------------------------


def test_write_read_delete_round_trip_with_sha256_and_encryption(s3_store, django_capture_on_commit_callbacks):
    art = artifact_create(tenant_id=_tenant_id(), run_id=None, name="blob", data=DATA, media_type="image/png")
    assert art.store == "s3" and art.key.startswith("honua/") and art.size == len(DATA)
    assert art.sha256 == hashlib.sha256(DATA).hexdigest()
    s3 = s3_store.s3
    head = s3.head_object(Bucket=s3_store.bucket, Key=art.key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(DATA) and head["ContentType"] == "image/png"
    assert head["ServerSideEncryption"] == "AES256"
    assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(DATA).digest()
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=s3_store.bucket, Key=art.key)["TagSet"]}
    assert tags["honua-retention"] == "ttl"
    assert tags["honua-expires"] == art.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The object as S3 has it, read by the test's own client, and through Honua.
    assert s3.get_object(Bucket=s3_store.bucket, Key=art.key)["Body"].read() == DATA
    assert artifact_read(art) == DATA
    with artifact_stream(art) as stream:
        chunks = iter(lambda: stream.read(1000), b"")
        assert b"".join(chunks) == DATA
    with django_capture_on_commit_callbacks(execute=True):
        assert artifacts_delete(Artifact.objects.filter(pk=art.pk)) == 1
    assert _missing(s3, s3_store.bucket, art.key)
    with pytest.raises(ArtifactGone):
        artifact_read(art)


def test_bytes_that_do_not_match_their_checksum_are_refused_on_read(s3_store):
    from botocore.exceptions import FlexibleChecksumError

    art = artifact_create(tenant_id=_tenant_id(), run_id=None, name="blob", data=DATA, media_type="image/png")
    # The object replaced behind Honua's back, its stored checksum the original's.
    s3_store.s3.put_object(
        Bucket=s3_store.bucket, Key=art.key, Body=DATA[:-1] + b"!", ChecksumAlgorithm="SHA256",
        ChecksumSHA256=base64.b64encode(hashlib.sha256(DATA).digest()).decode(),
    )
    with pytest.raises(FlexibleChecksumError):
        artifact_read(art)


def test_kms_encryption_by_setting(s3_store, settings):
    key_id = s3_store.aws.client("kms").create_key()["KeyMetadata"]["KeyId"]
    settings.HONUA = {**settings.HONUA, "S3_SSE": "aws:kms", "S3_KMS_KEY_ID": key_id}
    art = artifact_create(tenant_id=_tenant_id(), run_id=None, name="k", data=b"secret", media_type="text/plain")
    head = s3_store.s3.head_object(Bucket=s3_store.bucket, Key=art.key)
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(key_id)
    assert artifact_read(art) == b"secret"


def test_no_encryption_header_when_sse_is_none(s3_store, settings):
    settings.HONUA = {**settings.HONUA, "S3_SSE": "none"}
    art = artifact_create(tenant_id=_tenant_id(), run_id=None, name="p", data=b"plain", media_type="text/plain")
    assert "ServerSideEncryption" not in s3_store.s3.head_object(Bucket=s3_store.bucket, Key=art.key)


def test_honuas_own_signed_url_streams_an_s3_artifact(s3_store, client, settings):
    import hmac

    def _signature(artifact_id: str, expires: int) -> str:  # the URL signature, computed here
        return hmac.new(settings.SECRET_KEY.encode(), f"{artifact_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    art = artifact_create(tenant_id=_tenant_id(), run_id=None, name="blob", data=DATA, media_type="image/png")
    expires = int(time.time()) + 60
    response = client.get(f"/artifacts/{art.id}", {"expires": expires, "sig": _signature(str(art.id), expires)})
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Content-Length"] == str(len(DATA)) and b"".join(response.streaming_content) == DATA
    s3_store.s3.delete_object(Bucket=s3_store.bucket, Key=art.key)
    response = client.get(f"/artifacts/{art.id}", {"expires": expires, "sig": _signature(str(art.id), expires)})
    assert response.status_code == 404 and b"no longer stored" in response.content


def test_artifacts_stay_in_the_store_they_were_written_to(s3_store, settings, tmp_path, client):
    settings.MEDIA_ROOT = tmp_path / "artifacts"
    settings.HONUA = {**settings.HONUA, "ARTIFACT_STORE": "local"}
    local = artifact_create(tenant_id=_tenant_id(), run_id=None, name="old", data=b"local bytes", media_type="text/plain")
    settings.HONUA = {**settings.HONUA, "ARTIFACT_STORE": "s3"}
    remote = artifact_create(tenant_id=_tenant_id(), run_id=None, name="new", data=b"s3 bytes", media_type="text/plain")
    assert (local.store, remote.store) == ("local", "s3")
    assert artifact_read(local) == b"local bytes" and artifact_read(remote) == b"s3 bytes"
    assert (tmp_path / "artifacts" / local.key).read_bytes() == b"local bytes"
    assert "/artifacts/" in artifact_link(local.id, base_url="http://testserver/")["href"]
    assert artifact_link(remote.id, base_url="http://testserver/")["href"].startswith(s3_store.aws.endpoint_url)
    # Back to local: every link is Honua's, which serves the S3 artifact too.
    settings.HONUA = {**settings.HONUA, "ARTIFACT_STORE": "local"}
    href = artifact_link(remote.id, base_url="http://testserver/")["href"]
    assert href.startswith("http://testserver/artifacts/")
    assert b"".join(client.get(href).streaming_content) == b"s3 bytes"


def test_one_client_per_process_shared_by_threads(s3_store, settings):
    args = {"region": settings.HONUA["S3_REGION"], "endpoint_url": settings.HONUA["S3_ENDPOINT_URL"]}
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(aws_client("s3", **args))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1 and seen[0] is aws_client("s3", **args)
    config = seen[0].meta.config
    assert config.retries["mode"] == "standard" and config.connect_timeout == 5.0 and config.read_timeout == 30.0


def test_a_forked_child_makes_its_own_client(s3_store, settings):
    import os

    args = {"region": settings.HONUA["S3_REGION"], "endpoint_url": settings.HONUA["S3_ENDPOINT_URL"]}
    parent = aws_client("s3", **args)  # kept alive here, in the child too
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a new client, and it works
        try:
            client = aws_client("s3", **args)
            client.head_bucket(Bucket=s3_store.bucket)
            os.write(write, b"new" if client is not parent else b"same")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 10) == b"new"


# --- presigned links ---------------------------------------------------------------------------


def test_presigned_link_downloads_the_bytes_and_expires(s3_store, settings):
    settings.HONUA = {**settings.HONUA, "S3_PRESIGN_SECONDS": 2}
    art = artifact_create(tenant_id=_tenant_id(), run_id=None, name="points", data=DATA,
                          media_type="application/geo+json")
    link = artifact_link(art.id, base_url="http://testserver/")
    href = link["href"]
    assert href.startswith(f"{s3_store.aws.endpoint_url}/{s3_store.bucket}/{art.key}?")  # straight at S3
    query = parse_qs(urlsplit(href).query)
    assert query["X-Amz-Expires"] == ["2"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert abs(link["expires"] - (time.time() + 2)) < 2
    status, content, headers = _fetch(href)
    assert status == 200 and content == DATA
    assert headers["Content-Type"] == "application/geo+json"
    assert headers["Content-Disposition"] == 'attachment; filename="points.geojson"'
    time.sleep(3.1)
    status, content, _ = _fetch(href)
    assert status == 403 and b"Request has expired" in content


def test_presigned_link_never_outlives_the_artifact(s3_store, settings):
    settings.HONUA = {**settings.HONUA, "ARTIFACT_LINK_SECONDS": 3600, "S3_PRESIGN_SECONDS": 0}
    long = artifact_create(tenant_id=_tenant_id(), run_id=None, name="a", data=b"x", media_type="text/plain")
    soon = artifact_create(tenant_id=_tenant_id(), run_id=None, name="b", data=b"y", media_type="text/plain",
                           expires_at=timezone.now() + timedelta(seconds=90))
    seconds = {
        art.name: int(parse_qs(urlsplit(artifact_link(art.id, base_url="/")["href"]).query)["X-Amz-Expires"][0])
        for art in (long, soon)
    }
    assert seconds["a"] == 3600 and 85 <= seconds["b"] <= 90


# --- outputs and uploads through the APIs -------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # sync runs execute on the inline pool's own connection
def test_ogc_outputs_spilled_to_s3(s3_store, settings, client):
    settings.HONUA = {**settings.HONUA, "OUTPUT_SPILL_BYTES": 64}
    text = "spilled " * 40
    response = client.post(
        f"{API}processes/echo/execution",
        data=json.dumps({
            "inputs": {"string_input": text, "binary_input": {"value": base64.b64encode(PNG).decode()}},
            "response": "document",
            "outputs": {"string_input": {}, "binary_input": {"transmissionMode": "reference"}},
        }),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    doc = json.loads(response.content)
    assert doc["string_input"] == text  # by value, read back from S3
    href = doc["binary_input"]["href"]
    assert href.startswith(f"{s3_store.aws.endpoint_url}/{s3_store.bucket}/honua/")
    status, content, _ = _fetch(href)
    assert status == 200 and content == PNG
    run = ProcessRun.objects.get(process_id="echo", surface="ogc")
    arts = Artifact.objects.filter(run_id=run.id)
    assert {a.name for a in arts} == {"string_input", "binary_input"} and {a.store for a in arts} == {"s3"}
    keys = {o["Key"] for o in s3_store.s3.list_objects_v2(Bucket=s3_store.bucket)["Contents"]}
    assert keys == {a.key for a in arts}
    # The job's results document links to S3 too.
    results = json.loads(client.get(f"{API}jobs/{run.id}/results").content)
    status, content, _ = _fetch(results["binary_input"]["href"])
    assert status == 200 and content == PNG
    assert results["string_input"] == text


@pytest.mark.django_db(transaction=True)
def test_gpserver_results_spilled_to_s3_and_an_uploaded_item_from_s3(s3_store, settings, client):
    settings.HONUA = {**settings.HONUA, "OUTPUT_SPILL_BYTES": 64}
    uploaded = client.post(f"{ANALYSIS}/uploads/upload", {"f": "json", "file": SimpleUploadedFile("blob.png", PNG)})
    item_id = json.loads(uploaded.content)["item"]["itemID"]
    item = UploadItem.objects.select_related("artifact").get(id=item_id)
    assert item.artifact.store == "s3"
    assert s3_store.s3.get_object(Bucket=s3_store.bucket, Key=item.artifact.key)["Body"].read() == PNG
    download = client.get(f"{ANALYSIS}/uploads/{item_id}/download")  # streamed from S3 through Honua
    assert b"".join(download.streaming_content) == PNG and download["Content-Length"] == str(len(PNG))
    text = "spilled " * 40
    job = json.loads(client.post(f"{ANALYSIS}/echo/submitJob", {
        "f": "json", "string_input": text, "binary_input": json.dumps({"itemID": item_id}),
    }).content)["jobId"]
    from controlplane.tasks import run_execute
    from gpserver import translate

    run_id = translate.run_id_of(job)
    assert run_execute(str(run_id)) == "done"
    base = f"{ANALYSIS}/echo/jobs/{job}"
    out = json.loads(client.get(f"{base}/results/output_binary_input", {"f": "json"}).content)
    url = out["value"]["url"]
    assert url.startswith(f"{s3_store.aws.endpoint_url}/{s3_store.bucket}/honua/")
    status, content, headers = _fetch(url)
    assert status == 200 and content == PNG and headers["Content-Type"] == "image/png"
    value = json.loads(client.get(f"{base}/results/output_string_input", {"f": "json"}).content)["value"]
    assert value == text
    assert {a.store for a in Artifact.objects.filter(run_id=run_id)} == {"s3"}


# --- expiry, readiness, lifecycle ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_expiry_task_removes_the_s3_objects(s3_store, settings, client):
    settings.HONUA = {**settings.HONUA, "OUTPUT_SPILL_BYTES": 16}
    response = client.post(
        f"{API}processes/echo/execution",
        data=json.dumps({"inputs": {"string_input": "x" * 100}}), content_type="application/json",
    )
    assert response.status_code == 200
    run = ProcessRun.objects.get(process_id="echo", surface="ogc")
    art = Artifact.objects.get(run_id=run.id)
    assert not _missing(s3_store.s3, s3_store.bucket, art.key)
    assert results_expire() == 0
    ProcessRun.objects.filter(id=run.id).update(results_expire_at=timezone.now() - timedelta(seconds=1))
    assert results_expire() == 1
    assert _missing(s3_store.s3, s3_store.bucket, art.key)
    assert not Artifact.objects.filter(id=art.id).exists()


@pytest.mark.django_db(transaction=True)
def test_readyz_checks_the_bucket(s3_store, settings, client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert json.loads(response.content)["checks"]["artifacts"] == {
        "status": "ok", "duration_ms": pytest.approx(json.loads(response.content)["checks"]["artifacts"]["duration_ms"]),
        "store": "s3",
    }
    assert "Contents" not in s3_store.s3.list_objects_v2(Bucket=s3_store.bucket)  # the probe cleaned up
    s3_store.s3.delete_bucket(Bucket=s3_store.bucket)
    response = client.get("/readyz")
    assert response.status_code == 503
    check = json.loads(response.content)["checks"]["artifacts"]
    assert check["status"] == "fail" and check["error"] == "s3 store: the bucket does not take writes (NoSuchBucket)"
    s3_store.s3.create_bucket(Bucket=s3_store.bucket)
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_readyz_fails_within_its_timeout_when_s3_does_not_answer(s3_store, settings, client):
    import socket

    silent = socket.socket()  # accepts connections (backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        port = silent.getsockname()[1]
        settings.HONUA = {**settings.HONUA, "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "READYZ_TIMEOUT_SECONDS": 0.5}
        started = time.monotonic()
        response = client.get("/readyz")
        took = time.monotonic() - started
    finally:
        silent.close()
    assert response.status_code == 503
    assert json.loads(response.content)["checks"]["artifacts"]["error"] == "s3 store: S3 did not answer (ReadTimeoutError)"
    assert took < 3


def test_lifecycle_command_installs_the_rule_and_keeps_others(s3_store, settings, capsys):
    other = {"ID": "operators-own", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}}
    s3_store.s3.put_bucket_lifecycle_configuration(Bucket=s3_store.bucket, LifecycleConfiguration={"Rules": [other]})
    settings.HONUA = {**settings.HONUA, "S3_RETENTION_DAYS": 3}
    call_command("s3_lifecycle")
    call_command("s3_lifecycle")  # idempotent: still one rule of Honua's
    rules = {r["ID"]: r for r in s3_store.s3.get_bucket_lifecycle_configuration(Bucket=s3_store.bucket)["Rules"]}
    assert set(rules) == {"operators-own", LIFECYCLE_RULE_ID}
    rule = rules[LIFECYCLE_RULE_ID]
    assert rule["Status"] == "Enabled" and rule["Expiration"] == {"Days": 3}
    assert rule["Filter"] == {"And": {"Prefix": "honua/", "Tags": [{"Key": "honua-retention", "Value": "ttl"}]}}
    assert "after 3 days" in capsys.readouterr().out


def test_lifecycle_command_has_nothing_to_do_with_the_local_store(settings, capsys):
    settings.HONUA = {**settings.HONUA, "ARTIFACT_STORE": "local"}
    call_command("s3_lifecycle")
    assert "not s3" in capsys.readouterr().out
