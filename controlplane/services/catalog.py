"""The YAML process catalog: load, validate, sync into ProcessDefinition rows."""

from __future__ import annotations

import hashlib
import keyword
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import orjson
import yaml
from django.db import transaction

from controlplane.contracts import (
    ExecutionMode,
    ParamSpec,
    ParamType,
    ProcessSpec,
    ResourceClass,
    Tier,
)
from controlplane.models import ProcessDefinition
from controlplane.services.audit import audit_record
from executors.units import LINEAR_UNITS

CATALOG_DIR = Path(__file__).resolve().parent.parent / "catalog"

_TOP_KEYS = {
    "id", "version", "title", "description", "keywords", "modes", "default_mode", "tiers",
    "handlers", "resource_class", "hints", "limits", "inputs", "outputs",
}
_PARAM_KEYS = {
    "name", "type", "title", "description", "required", "default", "choices", "minimum",
    "maximum", "multi", "max_items", "geometry_types", "media_types",
}
_LIMIT_KEYS = {"max_bytes", "max_features", "max_vertices", "max_runtime_seconds", "max_cells"}
_GEOMETRY_TYPES = {
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
    "GeometryCollection",
}


@dataclass(frozen=True)
class CatalogProblem:
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


def _is_identifier(name: Any) -> TypeGuard[str]:
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


def _param_type(value: Any) -> ParamType | None:
    """The ParamType whose value is ``value``; None for any other value, string or not."""
    if not isinstance(value, str):
        return None
    try:
        return ParamType(value)
    except ValueError:
        return None


def _param_problems(where: str, doc: Any, seen: set[str]) -> list[str]:
    if not isinstance(doc, dict):
        return [f"{where}: must be a mapping"]
    problems = [f"{where}: unknown key {k!r}" for k in doc if k not in _PARAM_KEYS]
    name = doc.get("name")
    if not _is_identifier(name):
        problems.append(f"{where}: name {name!r} is not a valid Python identifier")
    elif name in seen:
        problems.append(f"{where}: duplicate name {name!r}")
    else:
        seen.add(name)
    ptype = _param_type(doc.get("type"))
    if ptype is None:
        return [*problems, f"{where}: unknown type {doc.get('type')!r}"]
    for gt in doc.get("geometry_types", ()):
        if gt not in _GEOMETRY_TYPES:
            problems.append(f"{where}: unknown geometry type {gt!r}")
    default = doc.get("default")
    if ptype is ParamType.LINEAR_UNIT and default is not None:
        if not (isinstance(default, dict) and default.get("unit") in LINEAR_UNITS):
            problems.append(f"{where}: default must be {{value, unit}} with a known unit")
    if doc.get("choices") and default is not None and default not in doc["choices"]:
        problems.append(f"{where}: default {default!r} is not one of the choices")
    return problems


def validate_document(doc: Any, file: str) -> list[CatalogProblem]:
    """Every problem with one catalog document (empty list when valid)."""
    if not isinstance(doc, dict):
        return [CatalogProblem(file, "the document must be a mapping")]
    out: list[str] = [f"unknown key {k!r}" for k in doc if k not in _TOP_KEYS]
    for key in ("id", "version", "title", "inputs", "outputs", "tiers", "handlers"):
        if key not in doc:
            out.append(f"missing required key {key!r}")
    if "id" in doc and not _is_identifier(doc["id"]):
        out.append(f"id {doc['id']!r} is not a valid Python identifier")
    if "id" in doc and Path(file).stem != doc["id"]:
        out.append(f"file name must be {doc['id']}.yaml")
    modes = doc.get("modes", ["sync", "async"])
    for mode in modes:
        if mode not in {m.value for m in ExecutionMode}:
            out.append(f"unknown mode {mode!r}")
    if doc.get("default_mode", modes[0] if modes else "sync") not in modes:
        out.append("default_mode must be one of modes")
    tiers = doc.get("tiers") or []
    handlers = doc.get("handlers") or {}
    if not tiers:
        out.append("tiers must list at least one tier")
    for tier in tiers:
        if tier not in {t.value for t in Tier}:
            out.append(f"unknown tier {tier!r}")
        elif tier not in handlers:
            out.append(f"tier {tier!r} has no handler")
    if doc.get("resource_class", "cpu_burst") not in {r.value for r in ResourceClass}:
        out.append(f"unknown resource_class {doc.get('resource_class')!r}")
    for key in doc.get("limits") or {}:
        if key not in _LIMIT_KEYS:
            out.append(f"unknown limit {key!r}")
    for section in ("inputs", "outputs"):
        seen: set[str] = set()
        params = doc.get(section) or []
        if not isinstance(params, list):
            out.append(f"{section} must be a list")
            continue
        for i, param in enumerate(params):
            out.extend(_param_problems(f"{section}[{i}]", param, seen))
    if not doc.get("outputs"):
        out.append("a process needs at least one output")
    return [CatalogProblem(file, m) for m in out]


def load_catalog(directory: Path = CATALOG_DIR) -> tuple[dict[str, dict[str, Any]], list[CatalogProblem]]:
    """All catalog documents by id, and every problem found."""
    docs: dict[str, dict[str, Any]] = {}
    problems: list[CatalogProblem] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            problems.append(CatalogProblem(path.name, f"invalid YAML: {exc}"))
            continue
        found = validate_document(doc, path.name)
        problems.extend(found)
        if not found:
            if doc["id"] in docs:
                problems.append(CatalogProblem(path.name, f"duplicate id {doc['id']!r}"))
            docs[doc["id"]] = doc
    return docs, problems


def _operational_fields(doc: dict[str, Any]) -> dict[str, Any]:
    modes = doc.get("modes", ["sync", "async"])
    return {
        "tier_order": list(doc["tiers"]),
        "resource_class": doc.get("resource_class", ResourceClass.CPU_BURST.value),
        "default_mode": doc.get("default_mode", modes[0]),
        "limits": dict(doc.get("limits") or {}),
    }


def catalog_sync(*, directory: Path = CATALOG_DIR, actor: str = "sync_catalog") -> dict[str, int]:
    """Upsert definitions from YAML; a changed document becomes a new revision."""
    docs, problems = load_catalog(directory)
    if problems:
        raise ValueError("invalid catalog:\n" + "\n".join(str(p) for p in problems))
    counts = {"created": 0, "updated": 0, "unchanged": 0, "retired": 0}
    with transaction.atomic():
        current = {
            d.process_id: d
            for d in ProcessDefinition.objects.select_for_update().filter(is_current=True)
        }
        for pid, doc in docs.items():
            sha = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
            existing = current.get(pid)
            if existing and existing.spec_sha256 == sha:
                if not existing.enabled and existing.spec.get("_retired"):
                    existing.enabled = True
                    existing.save(update_fields=["enabled", "updated_at"])
                counts["unchanged"] += 1
                continue
            revision = 1
            fields = _operational_fields(doc)
            if existing:
                revision = existing.revision + 1
                # Operators' edits of operational fields survive a YAML change.
                fields.update(
                    enabled=existing.enabled,
                    is_public=existing.is_public,
                )
                existing.is_current = False
                existing.save(update_fields=["is_current", "updated_at"])
            ProcessDefinition.objects.create(
                process_id=pid,
                version=str(doc["version"]),
                revision=revision,
                is_current=True,
                spec=doc,
                spec_sha256=sha,
                title=doc["title"],
                **fields,
            )
            counts["updated" if existing else "created"] += 1
            audit_record(
                action="catalog.sync",
                object_type="process",
                object_id=pid,
                actor=actor,
                before={"revision": existing.revision} if existing else None,
                after={"revision": revision, "version": str(doc["version"])},
            )
        for pid, defn in current.items():
            if pid not in docs and defn.enabled:
                defn.enabled = False
                defn.save(update_fields=["enabled", "updated_at"])
                counts["retired"] += 1
                audit_record(
                    action="catalog.retire", object_type="process", object_id=pid, actor=actor
                )
    return counts


def spec_from_definition(defn: ProcessDefinition) -> ProcessSpec:
    """The adapter-facing description of a definition."""
    doc = defn.spec
    modes = tuple(ExecutionMode(m) for m in doc.get("modes", ["sync", "async"]))
    return ProcessSpec(
        id=defn.process_id,
        version=defn.version,
        title=doc.get("title", defn.process_id),
        description=doc.get("description", ""),
        keywords=tuple(doc.get("keywords", ())),
        inputs=tuple(ParamSpec.from_json(p) for p in doc.get("inputs", ())),
        outputs=tuple(ParamSpec.from_json(p) for p in doc.get("outputs", ())),
        modes=modes,
        default_mode=ExecutionMode(defn.default_mode),
        tiers=tuple(Tier(t) for t in defn.tier_order),
        resource_class=ResourceClass(defn.resource_class),
    )
