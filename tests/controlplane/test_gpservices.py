"""GP services: shipped YAML and its sync, operators' edits in the admin, what a tenant sees."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from controlplane.contracts import GPExecutionType, Principal
from controlplane.exceptions import NoSuchService
from controlplane.models import AuditEvent, GPService, GPServiceTask, Tenant, TenantPolicyOverride
from controlplane.selectors import gp_folders, gp_service_get, gp_services
from controlplane.services import gpservices as svc
from controlplane.services.policy import policy_cache_clear

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("honua_catalog")]

GEOMETRY_TASKS = [
    "buffer", "convex_hull", "centroid", "envelope", "union", "intersection", "difference",
    "simplify", "densify", "project", "areas", "lengths", "distance", "make_valid",
    "minimum_bounding_circle",
]


def _write(directory: Path, doc: dict) -> Path:
    path = directory / svc.gpservice_file_name(doc.get("folder", ""), doc["name"])
    path.write_text(yaml.safe_dump(doc))
    return path


def _doc(**kw) -> dict:
    return {
        "folder": "Tools", "name": "Shapes", "description": "Shapes.",
        "execution_type": "esriExecutionTypeSynchronous", "tasks": ["centroid", "envelope"], **kw,
    }


def test_shipped_services_are_synced_in_order(principal):
    geometry = gp_service_get(principal=principal, folder="Honua", name="Geometry")
    assert geometry.execution_type is GPExecutionType.SYNC
    assert geometry.path == "Honua/Geometry" and geometry.maximum_records == 1000
    ids = [t.id for t in geometry.tasks]
    assert set(GEOMETRY_TASKS) <= set(ids)
    assert ids[:4] == ["buffer", "convex_hull", "centroid", "envelope"]  # the YAML's order
    assert all(t.id.isidentifier() for t in geometry.tasks)
    analysis = gp_service_get(principal=principal, folder="Honua", name="Analysis")
    assert analysis.execution_type is GPExecutionType.ASYNC
    assert [t.id for t in analysis.tasks] == [
        "buffer", "voronoi", "delaunay", "dbscan", "kmeans", "cluster_within", "hexbin", "idw", "union", "echo"
    ]
    assert analysis.task("voronoi") is not None and analysis.task("centroid") is None


def test_folders_and_services_by_folder(principal):
    assert gp_folders(principal=principal) == ["Honua"]
    assert [s.name for s in gp_services(principal=principal, folder="Honua")] == ["Analysis", "Geometry"]
    assert gp_services(principal=principal, folder="") == []
    root = GPService.objects.create(name="Echo", execution_type=GPExecutionType.SYNC.value)
    GPServiceTask.objects.create(service=root, process_id="echo")
    policy_cache_clear()
    assert [s.path for s in gp_services(principal=principal, folder="")] == ["Echo"]
    assert gp_folders(principal=principal) == ["Honua"]  # the root is not a folder
    # Esri URLs match names without regard to case.
    assert gp_service_get(principal=principal, folder="honua", name="GEOMETRY").name == "Geometry"
    assert [s.name for s in gp_services(principal=principal, folder="HONUA")] == ["Analysis", "Geometry"]


def test_no_such_service_when_absent_disabled_or_empty(principal):
    with pytest.raises(NoSuchService) as err:
        gp_service_get(principal=principal, folder="Honua", name="Nope")
    assert err.value.code == "no-such-service" and err.value.status == 404
    with pytest.raises(NoSuchService):
        gp_service_get(principal=principal, folder="", name="Geometry")  # wrong folder
    GPService.objects.filter(folder="Honua", name="Analysis").update(enabled=False)
    policy_cache_clear()
    with pytest.raises(NoSuchService):
        gp_service_get(principal=principal, folder="Honua", name="Analysis")
    assert [s.name for s in gp_services(principal=principal, folder="Honua")] == ["Geometry"]
    GPService.objects.create(folder="Empty", name="Nothing")  # no tasks: not shown
    policy_cache_clear()
    assert gp_folders(principal=principal) == ["Honua"]
    with pytest.raises(NoSuchService):
        gp_service_get(principal=principal, folder="Empty", name="Nothing")


def test_a_tenant_override_disabling_a_process_hides_the_task(principal):
    tenant = Tenant.objects.get(slug=principal.tenant)
    TenantPolicyOverride.objects.create(tenant=tenant, process_id="buffer", enabled=False)
    policy_cache_clear()
    geometry = gp_service_get(principal=principal, folder="Honua", name="Geometry")
    assert "buffer" not in [t.id for t in geometry.tasks]
    assert [t.id for t in geometry.tasks][:2] == ["convex_hull", "centroid"]
    Tenant.objects.create(slug="other", name="Other")
    other = gp_service_get(principal=Principal(tenant="other"), folder="Honua", name="Geometry")
    assert other.tasks[0].id == "buffer"
    # Every task of a service disabled for the tenant: the service and its folder disappear.
    for pid in ["voronoi", "delaunay", "dbscan", "kmeans", "cluster_within", "hexbin", "idw", "union", "echo"]:
        TenantPolicyOverride.objects.create(tenant=tenant, process_id=pid, enabled=False)
    policy_cache_clear()
    with pytest.raises(NoSuchService):
        gp_service_get(principal=principal, folder="Honua", name="Analysis")
    assert gp_service_get(principal=Principal(tenant="other"), folder="Honua", name="Analysis")


def test_sync_creates_updates_and_keeps_operator_edits(tmp_path):
    _write(tmp_path, _doc())
    assert svc.gpservices_sync(directory=tmp_path)["created"] == 1
    assert svc.gpservices_sync(directory=tmp_path)["unchanged"] == 1
    service = GPService.objects.get(folder="Tools", name="Shapes")
    assert list(service.tasks.values_list("process_id", flat=True)) == ["centroid", "envelope"]
    assert AuditEvent.objects.filter(action="gpservice.sync", object_id="Tools/Shapes").exists()

    _write(tmp_path, _doc(tasks=["envelope", "centroid", "areas"], maximum_records=50))
    assert svc.gpservices_sync(directory=tmp_path)["updated"] == 1
    service.refresh_from_db()
    assert service.maximum_records == 50
    assert list(service.tasks.order_by("position").values_list("process_id", flat=True)) == [
        "envelope", "centroid", "areas"]

    service.operator_edited = True
    service.execution_type = GPExecutionType.ASYNC.value
    service.save()
    _write(tmp_path, _doc(tasks=["lengths"]))
    assert svc.gpservices_sync(directory=tmp_path)["kept"] == 1
    service.refresh_from_db()
    assert service.execution_type == GPExecutionType.ASYNC.value
    assert list(service.tasks.values_list("process_id", flat=True)) != ["lengths"]


def test_sync_retires_a_removed_shipped_service(tmp_path):
    path = _write(tmp_path, _doc())
    svc.gpservices_sync(directory=tmp_path)
    path.unlink()
    assert svc.gpservices_sync(directory=tmp_path)["retired"] == 1
    assert not GPService.objects.get(folder="Tools", name="Shapes").enabled


def test_admin_edit_is_audited_and_survives_a_resync(admin_client, principal):
    service = GPService.objects.get(folder="Honua", name="Analysis")
    tasks = list(service.tasks.order_by("position"))
    data = {
        "folder": "Honua", "name": "Analysis", "description": "Edited by an operator.",
        "execution_type": GPExecutionType.SYNC.value, "maximum_records": "200", "enabled": "on",
        "tasks-TOTAL_FORMS": str(len(tasks) + 1), "tasks-INITIAL_FORMS": str(len(tasks)),
        "tasks-MIN_NUM_FORMS": "0", "tasks-MAX_NUM_FORMS": "1000",
    }
    for i, task in enumerate(tasks):
        data |= {f"tasks-{i}-id": str(task.pk), f"tasks-{i}-service": str(service.pk),
                 f"tasks-{i}-process_id": task.process_id, f"tasks-{i}-position": str(task.position)}
        if task.process_id == "echo":
            data[f"tasks-{i}-DELETE"] = "on"
    n = len(tasks)
    data |= {f"tasks-{n}-service": str(service.pk), f"tasks-{n}-process_id": "centroid",
             f"tasks-{n}-position": "99"}
    response = admin_client.post(f"/admin/controlplane/gpservice/{service.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    service.refresh_from_db()
    assert service.operator_edited and service.maximum_records == 200
    event = AuditEvent.objects.get(action="gpservice.change", object_id="Honua/Analysis")
    assert event.before["execution_type"] == GPExecutionType.ASYNC.value and "echo" in event.before["tasks"]
    assert event.after["execution_type"] == GPExecutionType.SYNC.value
    assert "echo" not in event.after["tasks"] and event.after["tasks"][-1] == "centroid"
    assert event.actor == "admin"

    call_command("sync_catalog", verbosity=0)
    policy_cache_clear()
    spec = gp_service_get(principal=principal, folder="Honua", name="Analysis")
    assert spec.execution_type is GPExecutionType.SYNC and spec.maximum_records == 200
    assert [t.id for t in spec.tasks][-1] == "centroid" and spec.task("echo") is None


def test_admin_offers_only_enabled_processes_and_audits_deletes(admin_client):
    service = GPService.objects.get(folder="Honua", name="Geometry")
    page = admin_client.get(f"/admin/controlplane/gpservice/{service.pk}/change/").content.decode()
    assert 'value="minimum_bounding_circle"' in page
    assert admin_client.get("/admin/controlplane/gpservice/?execution_type__exact=esriExecutionTypeSynchronous").status_code == 200
    assert 'value="echo"' in admin_client.get("/admin/controlplane/gpservice/add/").content.decode()
    assert admin_client.get("/admin/controlplane/uploaditem/").status_code == 200
    response = admin_client.post(f"/admin/controlplane/gpservice/{service.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="gpservice.delete", object_id="Honua/Geometry")
    assert event.before["tasks"][0] == "buffer" and event.after is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": ["centroid", "no_such_process"]}, "not a process of the catalog"),
        ({"name": "Bad Name"}, "must be letters, digits"),
        ({"name": "9lives"}, "must be letters, digits"),
        ({"folder": "a/b"}, "folder"),
        ({"execution_type": "sync"}, "execution_type"),
        ({"tasks": []}, "at least one process"),
        ({"tasks": ["centroid", "centroid"]}, "listed twice"),
        ({"maximum_records": 0}, "maximum_records"),
        ({"colour": "blue"}, "unknown key"),
    ],
)
def test_bad_service_documents_are_refused(change, message):
    doc = _doc(**change)
    problems = svc.validate_gpservice_document(doc, "Tools__Shapes.yaml", {"centroid", "envelope"})
    assert any(message in str(p) for p in problems), problems


def test_file_name_must_match(tmp_path):
    (tmp_path / "shapes.yaml").write_text(yaml.safe_dump(_doc()))
    _, problems = svc.load_gpservices(tmp_path, process_ids={"centroid", "envelope"})
    assert any("file name must be Tools__Shapes.yaml" in str(p) for p in problems)
    with pytest.raises(ValueError, match="invalid GP services"):
        svc.gpservices_sync(directory=tmp_path)


def test_manage_check_fails_on_a_bad_service_yaml(tmp_path, monkeypatch):
    call_command("check")  # the shipped services are valid
    _write(tmp_path, _doc(tasks=["centroid", "not_a_process"], execution_type="fast"))
    monkeypatch.setattr(svc, "GPSERVICES_DIR", tmp_path)
    with pytest.raises(SystemCheckError) as err:
        call_command("check")
    text = str(err.value)
    assert "honua.E002" in text and "not_a_process" in text and "execution_type" in text
