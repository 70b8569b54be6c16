"""LayerAdmin: add by upload (through the ingest service), tenant administrators see only
their tenant's layers, delete drops the hosted table."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from controlplane.models import AuditEvent, Layer
from controlplane.services import layers as svc
from tests.executors.realdata.datasets import dataset_file
from tests.identity import fast_passwords, member  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("honua_catalog", "fast_passwords")]


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "artifacts"


def _staff_admin(tenant: str, username: str):
    m = member(tenant, username, role="admin")
    m.user.is_staff = True
    m.user.save(update_fields=["is_staff"])
    return m


def _login(user) -> Client:
    http = Client()
    http.force_login(user)
    return http


def test_tenant_admin_adds_by_upload_and_sees_only_own():
    ada, bea = _staff_admin("acme", "ada"), _staff_admin("globex", "bea")
    data = dataset_file("baltim/baltimore.geojson").read_bytes()
    svc.layer_ingest(tenant_id=bea.tenant_id, collection_id="theirs", title="T", data=data, filename="b.geojson")
    http = _login(ada.user)
    form = http.get("/admin/controlplane/layer/add/")
    assert form.status_code == 200 and b'name="file"' in form.content and b'name="table"' not in form.content
    response = http.post("/admin/controlplane/layer/add/", {
        "tenant": ada.tenant_id, "collection_id": "houses", "title": "Houses", "description": "",
        "file": SimpleUploadedFile("b.geojson", data), "storage": "hosted", "file_srid": "", "file_sublayer": "",
    })
    assert response.status_code == 302, [line for line in response.content.decode().splitlines() if "error" in line.lower()][:20]
    layer = Layer.objects.get(collection_id="houses")
    assert layer.tenant_id == ada.tenant_id and layer.feature_count == 211 and layer.kind == "hosted"
    assert AuditEvent.objects.filter(action="layer.ingest", object_id=str(layer.pk), actor="ada").exists()
    listing = http.get("/admin/controlplane/layer/")
    assert b"houses" in listing.content and b"theirs" not in listing.content
    other = Layer.objects.get(collection_id="theirs")
    assert http.get(f"/admin/controlplane/layer/{other.pk}/change/").status_code == 404
    # a tenant administrator may not register database tables
    refused = http.post("/admin/controlplane/layer/add/", {
        "tenant": ada.tenant_id, "collection_id": "t", "title": "t", "table": "public.x", "storage": "hosted",
    })
    assert refused.status_code == 200 and not Layer.objects.filter(collection_id="t").exists()
    # a bad file is a form error, not a 500, and creates nothing
    bad = http.post("/admin/controlplane/layer/add/", {
        "tenant": ada.tenant_id, "collection_id": "bad", "title": "b", "storage": "hosted",
        "file": SimpleUploadedFile("x.geojson", b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
    })
    assert bad.status_code == 200 and b"errornote" in bad.content
    assert not Layer.objects.filter(collection_id="bad").exists()
    # delete drops the hosted table
    table = layer.table_name
    done = http.post(f"/admin/controlplane/layer/{layer.pk}/delete/", {"post": "yes"})
    assert done.status_code == 302 and not Layer.objects.filter(pk=layer.pk).exists()
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", [f"honua_data.{table}"])
        assert cur.fetchone()[0] is None


def test_operator_sees_all_and_may_add_a_table(settings):
    _staff_admin("acme", "ada")
    op = get_user_model().objects.create_superuser("op", password="x")
    settings.HONUA = {**settings.HONUA, "LAYER_TABLES": ["public.adm_pts"]}
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE public.adm_pts (id int PRIMARY KEY, geom geometry(Point, 4326))")
        cur.execute("INSERT INTO public.adm_pts VALUES (1, ST_SetSRID(ST_MakePoint(1, 2), 4326))")
    from controlplane.models import Tenant

    acme = Tenant.objects.get(slug="acme")
    http = _login(op)
    response = http.post("/admin/controlplane/layer/add/", {
        "tenant": acme.pk, "collection_id": "pts", "title": "P", "table": "public.adm_pts", "storage": "hosted",
    })
    assert response.status_code == 302, [line for line in response.content.decode().splitlines() if "error" in line.lower()][:20]
    layer = Layer.objects.get(collection_id="pts")
    assert (layer.kind, layer.feature_count, layer.srid) == ("table", 1, 4326)
    assert b"pts" in http.get("/admin/controlplane/layer/").content
