"""Tenant isolation: tenant B's credentials against tenant A's jobs, results, inputs, uploads and
artifacts get "not found" on every endpoint of both APIs, answered exactly as for an id that
does not exist (no existence leak), and A's objects are untouched afterwards.

Every URL pattern of ``gpserver.urls``, ``ogcprocesses.urls`` and ``controlplane.urls`` has a
case here: a new endpoint without one fails ``test_every_endpoint_has_a_case``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern

from controlplane.models import Layer, ProcessRun, UploadItem
from controlplane.services.layers import layer_ingest
from controlplane.tasks import run_execute
from gpserver import translate
from tests.gpserver.support import ANALYSIS, GEOMETRY, ROOT
from tests.identity import REFERER, fast_passwords, gp_token, key_of, member  # noqa: F401
from tests.ogcprocesses.conftest import echo_tier  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("honua_catalog", "fast_passwords")]

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
UPLOADS = f"{ANALYSIS}/uploads"


@dataclass
class World:
    """Tenant A's objects, and the ways B's calls are made."""

    a_job: uuid.UUID  # a GP echo job with an uploaded file input, finished
    a_ogc_job: uuid.UUID  # an OGC job, finished
    a_item: str  # a committed upload
    a_parts_item: str  # a registered upload waiting for parts
    a_artifact: str  # the output of a_ogc_job, stored as an artifact (by reference)
    a_layer: str  # a layer (collection id) of A
    a_secrets: tuple[str, ...]  # strings of A that must never appear in B's answers
    gp_b: dict[str, str]  # B's GPServer token headers
    gp_a: dict[str, str]
    ogc_b: dict[str, str]  # B's API key header
    ogc_a: dict[str, str]


def _gp(client: Client, method: str, path: str, headers: dict[str, str], **params: Any) -> Any:
    data = {"f": "json", **{k: v if isinstance(v, str | SimpleUploadedFile) else json.dumps(v)
                            for k, v in params.items()}}
    return getattr(client, method)(path, data, headers=headers)


@pytest.fixture
def world(client: Client, echo_tier: Any) -> World:  # noqa: F811  (the imported fixture)
    alice, bob = member("acme", "alice"), member("globex", "bob", role="admin")
    gp_a = {"X-Esri-Authorization": f"Bearer {gp_token(client, 'alice')['token']}", "Referer": REFERER}
    gp_b = {"X-Esri-Authorization": f"Bearer {gp_token(client, 'bob')['token']}", "Referer": REFERER}
    item = _gp(client, "post", f"{UPLOADS}/upload", gp_a, file=SimpleUploadedFile("a.png", PNG)).json()["item"]
    parts = _gp(client, "post", f"{UPLOADS}/register", gp_a, itemName="later.bin").json()["item"]
    job = _gp(client, "post", f"{ANALYSIS}/echo/submitJob", gp_a, string_input="acme secret",
              binary_input={"itemID": item["itemID"]}).json()["jobId"]
    run_id = translate.run_id_of(job)
    assert run_execute(str(run_id)) == "done"
    ogc_a, ogc_b = {"X-API-Key": key_of(alice)}, {"X-API-Key": key_of(bob)}
    by_reference = {"inputs": {"string_input": "acme"}, "outputs": {"string_input": {"transmissionMode": "reference"}}}
    ogc = client.post("/ogcapi/processes/echo/execution", json.dumps(by_reference),
                      content_type="application/json", headers={"Prefer": "respond-async", **ogc_a})
    ogc_job = uuid.UUID(ogc["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert run_execute(str(ogc_job)) == "done"
    run = ProcessRun.objects.get(id=run_id)
    assert run.tenant.slug == "acme" and run.status == "succeeded"
    stored = ProcessRun.objects.get(id=ogc_job).output_links["string_input"]
    artifact = str(stored["artifact"])
    layer = layer_ingest(tenant_id=alice.tenant_id, collection_id="acme_wells", title="Acme wells",
                         data=json.dumps(A_LAYER).encode(), filename="wells.geojson")
    secrets = (str(run_id), run_id.hex, str(ogc_job), ogc_job.hex, item["itemID"], parts["itemID"], artifact,
               "acme", "alice", layer.collection_id, "Acme wells", "well of acme")
    return World(run_id, ogc_job, item["itemID"], parts["itemID"], artifact, layer.collection_id, secrets,
                 gp_b, gp_a, ogc_b, ogc_a)


A_LAYER = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [174.76, -36.85]},
     "properties": {"name": "well of acme"}}]}


Case = Callable[[Client, World, str, str], Any]  # (client, world, job or item id, form) -> response


def _ids(w: World, kind: str) -> tuple[str, str]:
    """(A's id, an id of that kind that does not exist), as the URL spells them."""
    if kind == "job":
        return translate.job_id(w.a_job), translate.job_id(uuid.uuid4())
    if kind == "ogc-job":
        return str(w.a_ogc_job), str(uuid.uuid4())
    if kind == "item":
        return w.a_item, "i" + uuid.uuid4().hex
    if kind == "parts-item":
        return w.a_parts_item, "i" + uuid.uuid4().hex
    if kind == "artifact":
        return w.a_artifact, str(uuid.uuid4())
    if kind == "collection":
        return w.a_layer, "layer_" + uuid.uuid4().hex[:12]
    raise AssertionError(kind)


def _gp_case(path: str, method: str = "get", **params: Any) -> Case:
    def call(client: Client, w: World, some_id: str, kind: str) -> Any:
        values = {k: (json.loads(json.dumps(v).replace("<id>", some_id)) if isinstance(v, dict) else v)
                  for k, v in params.items()}
        if "file" in values:
            values["file"] = SimpleUploadedFile("b.bin", b"bytes of B")
        return _gp(client, method, path.replace("<id>", some_id), w.gp_b, **values)

    return call


def _ogc_case(path: str, method: str = "get", body: Any = None) -> Case:
    def call(client: Client, w: World, some_id: str, kind: str) -> Any:
        headers = {"Accept": "application/json", **w.ogc_b}
        url = "/ogcapi/" + path.replace("<id>", some_id)
        if method == "post":
            data = json.dumps(body).replace("<id>", some_id)
            return client.post(url, data, content_type="application/json", headers=headers)
        return getattr(client, method)(url, headers=headers)

    return call


def _plain(path: str) -> Case:
    def call(client: Client, w: World, some_id: str, kind: str) -> Any:
        return client.get(path.replace("<id>", some_id), headers=w.ogc_b)

    return call


GP_JOB = f"{ANALYSIS}/echo/jobs/<id>"
GP_ITEM = f"{UPLOADS}/<id>"

# url name -> (kind of A's object the case is about, or None for a resource without one; the call)
CASES: dict[str, tuple[str | None, Case]] = {
    # GPServer
    "gpserver:info": (None, _gp_case("/arcgis/rest/info")),
    "gpserver:services": (None, _gp_case(ROOT)),
    "gpserver:folder": (None, _gp_case(f"{ROOT}/Honua")),
    "gpserver:service": (None, _gp_case(ANALYSIS)),
    "gpserver:task": (None, _gp_case(f"{ANALYSIS}/echo")),
    "gpserver:service-info": (None, _gp_case(f"{ANALYSIS}/info")),
    "gpserver:service-iteminfo": (None, _gp_case(f"{ANALYSIS}/info/iteminfo")),
    "gpserver:service-metadata": (None, _gp_case(f"{ANALYSIS}/info/metadata")),
    "gpserver:service-thumbnail": (None, _gp_case(f"{ANALYSIS}/info/thumbnail")),
    "gpserver:execute": ("item", _gp_case(f"{ANALYSIS}/echo/execute", "post", string_input="b",
                                          binary_input={"itemID": "<id>"})),
    "gpserver:submit-job": ("item", _gp_case(f"{ANALYSIS}/echo/submitJob", "post", string_input="b",
                                             binary_input={"itemID": "<id>"})),
    "gpserver:job": ("job", _gp_case(GP_JOB)),
    "gpserver:job-result": ("job", _gp_case(f"{GP_JOB}/results/string_input")),
    "gpserver:job-result-file": ("job", _gp_case(f"{GP_JOB}/results/binary_input/file")),
    "gpserver:job-input": ("job", _gp_case(f"{GP_JOB}/inputs/binary_input")),
    "gpserver:job-cancel": ("job", _gp_case(f"{GP_JOB}/cancel")),
    "gpserver:job-delete": ("job", _gp_case(f"{GP_JOB}/delete", "post")),
    "gpserver:uploads-info": (None, _gp_case(f"{UPLOADS}/info")),
    "gpserver:upload": (None, _gp_case(f"{UPLOADS}/upload", "post", file=True)),
    "gpserver:upload-register": (None, _gp_case(f"{UPLOADS}/register", "post", itemName="b.bin")),
    "gpserver:upload-item": ("item", _gp_case(GP_ITEM)),
    "gpserver:upload-part": ("parts-item", _gp_case(f"{GP_ITEM}/uploadPart", "post", file=True, partNumber="1")),
    "gpserver:upload-commit": ("parts-item", _gp_case(f"{GP_ITEM}/commit", "post", parts="1")),
    "gpserver:upload-delete": ("item", _gp_case(f"{GP_ITEM}/delete", "post")),
    "gpserver:upload-download": ("item", _gp_case(f"{GP_ITEM}/download")),
    "gpserver:upload-ingest": ("item", _gp_case(f"{GP_ITEM}/ingest", "post", collectionId="stolen")),
    "gpserver:generate-token": (None, lambda c, w, i, k: c.post(
        "/arcgis/tokens/generateToken", {"username": "bob", "password": "x", "tenant": "acme", "f": "json"})),
    "gpserver:tokens": (None, lambda c, w, i, k: c.post(
        "/arcgis/tokens/", {"username": "alice", "password": "guess", "referer": REFERER, "f": "json"})),
    "gpserver:not-found": ("job", _gp_case(f"{GP_JOB}/nonsense")),
    # OGC API - Processes
    "ogcprocesses:landing": (None, _ogc_case("")),
    "ogcprocesses:conformance": (None, _ogc_case("conformance")),
    "ogcprocesses:api": (None, _ogc_case("api")),
    "ogcprocesses:process-list": (None, _ogc_case("processes?limit=1000")),
    "ogcprocesses:process": (None, _ogc_case("processes/echo")),
    "ogcprocesses:execute": (None, _ogc_case("processes/echo/execution", "post", {"inputs": {"string_input": "b"}})),
    "ogcprocesses:job-list": (None, _ogc_case("jobs?status=accepted,running,successful,failed,dismissed&limit=1000")),
    "ogcprocesses:job": ("ogc-job", _ogc_case("jobs/<id>")),
    "ogcprocesses:job-results": ("ogc-job", _ogc_case("jobs/<id>/results")),
    "ogcprocesses:not-found": ("ogc-job", _ogc_case("jobs/<id>/nonsense")),
    # OGC API - Features and uploads
    "ogcprocesses:collections": (None, _ogc_case("collections")),
    "ogcprocesses:collection": ("collection", _ogc_case("collections/<id>")),
    "ogcprocesses:items": ("collection", _ogc_case("collections/<id>/items?bbox=-180,-90,180,90")),
    "ogcprocesses:item": ("collection", _ogc_case("collections/<id>/items/1")),
    "ogcprocesses:uploads": (None, lambda c, w, i, k: c.post(
        "/ogcapi/uploads?filename=b.png", PNG, content_type="image/png", headers=w.ogc_b)),
    "ogcprocesses:upload": ("item", _ogc_case("uploads/<id>")),
    # Shared: artifact downloads (a signed link is the credential; without it, nothing) and probes
    "artifact-download": ("artifact", _plain("/artifacts/<id>")),
    # AWS Batch job events by SNS: tenant-less, refused unless SNS signed them (tests/controlplane/test_batch_events.py)
    "sns-batch-events": (None, lambda c, w, i, k: c.post(
        "/aws/sns/batch-events", data=json.dumps({"Type": "Notification", "Message": "{}"}),
        content_type="text/plain", headers=w.ogc_b)),
    "healthz": (None, _plain("/healthz")),
    "readyz": (None, _plain("/readyz")),
    "metrics": (None, _plain("/metrics")),
}
# Methods beyond the case's own that change things: DELETE on an OGC job.
EXTRA: dict[str, tuple[str, Case]] = {
    "ogcprocesses:job DELETE": ("ogc-job", _ogc_case("jobs/<id>", "delete")),
    "ogcprocesses:upload DELETE": ("item", _ogc_case("uploads/<id>", "delete")),
    "ogcprocesses:collections POST (A's upload)": ("item", _ogc_case("collections", "post",
                                                                    {"id": "stolen", "upload": "<id>"})),
    "ogcprocesses:execute (A's upload by href)": ("item", _ogc_case(
        "processes/echo/execution", "post",
        {"inputs": {"string_input": "b", "binary_input": {"href": "http://testserver/ogcapi/uploads/<id>"}}})),
    "gpserver:job (service level)": ("job", _gp_case(f"{ANALYSIS}/jobs/<id>")),
    "gpserver:job-result (service level)": ("job", _gp_case(f"{ANALYSIS}/jobs/<id>/results/string_input")),
    "gpserver:job (another service)": ("job", _gp_case(f"{GEOMETRY}/jobs/<id>")),
}


def _url_names() -> set[str]:
    from controlplane import urls as shared
    from gpserver import urls as gp
    from honua import urls as root
    from ogcprocesses import urls as ogc

    names = set()
    for module, prefix in ((gp, "gpserver:"), (ogc, "ogcprocesses:"), (shared, "")):
        for pattern in module.urlpatterns:
            assert isinstance(pattern, URLPattern) and pattern.name, pattern
            names.add(prefix + pattern.name)
    # the root's own endpoints (the operations probes); its includes are walked above, or are
    # the admin (tests/controlplane/test_admin*)
    names |= {p.name for p in root.urlpatterns if isinstance(p, URLPattern) and p.name}
    return names


def test_every_endpoint_has_a_case():
    assert set(CASES) == _url_names()


def _normal(response: Any, *ids: str) -> tuple[int, str]:
    """Status and body with the given ids (in every spelling) replaced by a placeholder."""
    text = response.content.decode(errors="replace")
    for some in ids:
        for spelling in {some, some.replace("-", ""), "j" + some.replace("-", "")}:
            text = text.replace(spelling, "<id>")
    text = re.sub(r"test_honua_\d+", "<db>", text)
    return response.status_code, text


def _leaks(text: str, w: World) -> list[str]:
    """A's strings in an answer (the id the caller sent, echoed back, is not a leak)."""
    return [s for s in w.a_secrets if s in text]


@pytest.mark.parametrize("name", [*CASES, *EXTRA])
def test_tenant_b_finds_nothing_of_tenant_a(client, world, name):
    kind, call = CASES[name] if name in CASES else EXTRA[name]
    if kind is None:
        response = call(client, world, "", "")
        assert response.status_code < 500, (name, response.status_code, response.content[:300])
        text = response.content.decode(errors="replace")
        assert not _leaks(text, world), (name, _leaks(text, world))
        return
    theirs, unknown = _ids(world, kind)
    answer_a, answer_unknown = call(client, world, theirs, kind), call(client, world, unknown, kind)
    assert _normal(answer_a, theirs) == _normal(answer_unknown, unknown), name
    status, text = _normal(answer_a, theirs)
    doc = json.loads(text) if text.startswith("{") else {}
    if name.startswith("gpserver:"):
        assert status == 200 and doc["error"]["code"] in (400, 404), (name, text[:300])
        assert re.match(r"(no |invalid url)", doc["error"]["message"].lower()), (name, text[:300])
    else:
        assert status == 404, (name, status, text[:300])
    assert not _leaks(text, world), (name, _leaks(text, world))


def test_tenant_as_objects_are_intact_after_bs_attempts(client, world):
    for name in (*CASES, *EXTRA):
        kind, call = CASES[name] if name in CASES else EXTRA[name]
        if kind is not None:
            call(client, world, _ids(world, kind)[0], kind)
    job = _gp(client, "get", f"{GP_JOB.replace('<id>', translate.job_id(world.a_job))}", world.gp_a).json()
    assert job["jobStatus"] == "esriJobSucceeded", job
    result = _gp(client, "get", f"{GP_JOB.replace('<id>', translate.job_id(world.a_job))}/results/string_input",
                 world.gp_a).json()
    assert result["value"] == "acme secret"
    assert _gp(client, "get", f"{UPLOADS}/{world.a_item}", world.gp_a).json()["itemID"] == world.a_item
    assert UploadItem.objects.get(id=world.a_parts_item).parts.count() == 0
    assert not Layer.objects.filter(collection_id="stolen").exists()
    items = client.get(f"/ogcapi/collections/{world.a_layer}/items", headers=world.ogc_a)
    assert items.status_code == 200 and items.json()["features"][0]["properties"] == {"name": "well of acme"}
    ogc = client.get(f"/ogcapi/jobs/{world.a_ogc_job}", headers={"Accept": "application/json", **world.ogc_a})
    assert ogc.status_code == 200 and ogc.json()["status"] == "successful"
