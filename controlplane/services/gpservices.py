"""GP services: the shipped YAML (load, validate, sync) and operators' changes (audit).

Shipped services are one YAML file each under ``controlplane/catalog/gpservices/``
(format in ``controlplane/catalog/README.md``). ``sync_catalog`` creates missing services
and updates shipped ones the operators have not changed in the admin; a service an
operator edited (or made) is theirs from then on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from django.db import transaction
from django.db.models.functions import Lower

from controlplane.contracts import GPExecutionType
from controlplane.models import GPService, GPServiceTask
from controlplane.models.gpservices import FOLDER_NAME_RE, SERVICE_NAME_RE
from controlplane.services.audit import audit_record
from controlplane.services.catalog import CATALOG_DIR, CatalogProblem, load_catalog

GPSERVICES_DIR = CATALOG_DIR / "gpservices"

_KEYS = {"folder", "name", "description", "execution_type", "maximum_records", "enabled", "tasks"}


def gpservice_file_name(folder: str, name: str) -> str:
    """``<folder>__<name>.yaml``, or ``<name>.yaml`` for a root service."""
    return f"{folder}__{name}.yaml" if folder else f"{name}.yaml"


def validate_gpservice_document(doc: Any, file: str, process_ids: set[str]) -> list[CatalogProblem]:
    """Every problem with one service document (empty when valid)."""
    if not isinstance(doc, dict):
        return [CatalogProblem(file, "the document must be a mapping")]
    out: list[str] = [f"unknown key {k!r}" for k in doc if k not in _KEYS]
    folder = doc.get("folder", "")
    name = doc.get("name")
    if not isinstance(folder, str) or not re.fullmatch(FOLDER_NAME_RE, folder):
        out.append(f"folder {folder!r} must be empty or letters, digits, '_' and '-'")
    if not isinstance(name, str) or not re.fullmatch(SERVICE_NAME_RE, name):
        out.append(f"name {name!r} must be letters, digits and '_' (not starting with a digit)")
    elif isinstance(folder, str) and Path(file).name != gpservice_file_name(folder, name):
        out.append(f"file name must be {gpservice_file_name(folder, name)}")
    etype = doc.get("execution_type")
    if etype not in {t.value for t in GPExecutionType}:
        out.append(
            f"execution_type {etype!r} must be one of " + ", ".join(t.value for t in GPExecutionType)
        )
    records = doc.get("maximum_records", 1000)
    if not isinstance(records, int) or isinstance(records, bool) or records < 1:
        out.append("maximum_records must be a positive integer")
    if not isinstance(doc.get("enabled", True), bool):
        out.append("enabled must be true or false")
    if not isinstance(doc.get("description", ""), str):
        out.append("description must be a string")
    tasks = doc.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        out.append("tasks must list at least one process id")
    else:
        seen: set[str] = set()
        for task in tasks:
            if task in seen:
                out.append(f"task {task!r} is listed twice")
            elif not isinstance(task, str) or task not in process_ids:
                out.append(f"task {task!r} is not a process of the catalog")
            else:
                seen.add(task)
    return [CatalogProblem(f"gpservices/{file}", m) for m in out]


def load_gpservices(
    directory: Path | None = None, *, process_ids: set[str] | None = None
) -> tuple[dict[tuple[str, str], dict[str, Any]], list[CatalogProblem]]:
    """Shipped service documents by (folder, name) lower-cased, and every problem found.
    Task ids are checked against ``process_ids`` (default: the YAML process catalog)."""
    directory = directory or GPSERVICES_DIR
    if process_ids is None:
        process_ids = set(load_catalog()[0])
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    problems: list[CatalogProblem] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            problems.append(CatalogProblem(f"gpservices/{path.name}", f"invalid YAML: {exc}"))
            continue
        found = validate_gpservice_document(doc, path.name, process_ids)
        problems.extend(found)
        if found:
            continue
        key = (doc.get("folder", "").lower(), doc["name"].lower())
        if key in docs:
            problems.append(CatalogProblem(f"gpservices/{path.name}", "duplicate folder and name"))
        docs[key] = doc
    return docs, problems


def _sha(doc: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _apply(service: GPService, doc: dict[str, Any]) -> None:
    service.folder = doc.get("folder", "")
    service.name = doc["name"]
    service.description = doc.get("description", "").strip()
    service.execution_type = doc["execution_type"]
    service.maximum_records = doc.get("maximum_records", 1000)
    service.enabled = doc.get("enabled", True)
    service.catalog_sha256 = _sha(doc)


def gpservice_snapshot(service: GPService) -> dict[str, Any]:
    """A service and its tasks as JSON, for audit before/after."""
    return {
        "folder": service.folder,
        "name": service.name,
        "description": service.description,
        "execution_type": service.execution_type,
        "maximum_records": service.maximum_records,
        "enabled": service.enabled,
        "tasks": list(
            GPServiceTask.objects.filter(service_id=service.pk)
            .order_by("position", "process_id")
            .values_list("process_id", flat=True)
        )
        if service.pk
        else [],
    }


def _set_tasks(service: GPService, tasks: list[str]) -> None:
    GPServiceTask.objects.filter(service=service).delete()
    GPServiceTask.objects.bulk_create(
        GPServiceTask(service=service, process_id=pid, position=i) for i, pid in enumerate(tasks)
    )


def gpservices_sync(*, directory: Path | None = None, actor: str = "sync_catalog") -> dict[str, int]:
    """Create missing shipped services; update shipped ones no operator has changed."""
    docs, problems = load_gpservices(directory)
    if problems:
        raise ValueError("invalid GP services:\n" + "\n".join(str(p) for p in problems))
    counts = {"created": 0, "updated": 0, "unchanged": 0, "kept": 0, "retired": 0}
    with transaction.atomic():
        existing: dict[tuple[str, str], GPService] = {
            (s.folder.lower(), s.name.lower()): s for s in GPService.objects.select_for_update()
        }
        for key, doc in docs.items():
            service = existing.get(key)
            if service is None:
                created = GPService()
                _apply(created, doc)
                created.save()
                _set_tasks(created, doc["tasks"])
                counts["created"] += 1
                audit_record(
                    action="gpservice.sync", object_type="gpservice", object_id=str(created),
                    actor=actor, after=gpservice_snapshot(created),
                )
            elif service.operator_edited:
                counts["kept"] += 1
            elif service.catalog_sha256 == _sha(doc):
                counts["unchanged"] += 1
            else:
                before = gpservice_snapshot(service)
                _apply(service, doc)
                service.save()
                _set_tasks(service, doc["tasks"])
                counts["updated"] += 1
                audit_record(
                    action="gpservice.sync", object_type="gpservice", object_id=str(service),
                    actor=actor, before=before, after=gpservice_snapshot(service),
                )
        for key, service in existing.items():
            # A shipped service whose file is gone: retire it, unless an operator owns it.
            if key not in docs and service.catalog_sha256 and not service.operator_edited and service.enabled:
                before = gpservice_snapshot(service)
                service.enabled = False
                service.save(update_fields=["enabled", "updated_at"])
                counts["retired"] += 1
                audit_record(
                    action="gpservice.retire", object_type="gpservice", object_id=str(service),
                    actor=actor, before=before, after=gpservice_snapshot(service),
                )
    return counts


def gpservice_audit_change(
    *, service: GPService, before: dict[str, Any] | None, actor: str, deleted: bool = False
) -> None:
    """Record an operator's change of a service (call inside the change's transaction)."""
    if deleted:
        action, after = "gpservice.delete", None
    else:
        action, after = ("gpservice.change" if before else "gpservice.create"), gpservice_snapshot(service)
    audit_record(
        action=action, object_type="gpservice", object_id=str(service), actor=actor,
        before=before, after=after,
    )


@dataclass(frozen=True)
class GPServiceRow:
    """An enabled service as cached for the selectors (no tenant applied yet)."""

    folder: str
    name: str
    description: str
    execution_type: GPExecutionType
    maximum_records: int
    task_ids: tuple[str, ...]


def gpservice_rows() -> list[GPServiceRow]:
    """Every enabled service with its task ids in position order."""
    tasks: dict[int, list[str]] = {}
    for service_id, pid in (
        GPServiceTask.objects.filter(service__enabled=True)
        .order_by("service_id", "position", "process_id")
        .values_list("service_id", "process_id")
    ):
        tasks.setdefault(service_id, []).append(pid)
    return [
        GPServiceRow(
            folder=s.folder,
            name=s.name,
            description=s.description,
            execution_type=GPExecutionType(s.execution_type),
            maximum_records=s.maximum_records,
            task_ids=tuple(tasks.get(s.pk, ())),
        )
        for s in GPService.objects.filter(enabled=True).order_by(Lower("folder"), Lower("name"))
    ]
