"""Reads for the adapters. Every query of runs and artifacts is scoped to the caller's tenant."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from controlplane.contracts import (
    ExecutionResult,
    GPServiceSpec,
    LayerInfo,
    LayerPage,
    Principal,
    ProcessSpec,
    RunStatus,
    Surface,
)
from controlplane.exceptions import (
    InvalidParameterValue,
    NoSuchJob,
    NoSuchLayer,
    NoSuchOutput,
    NoSuchProcess,
    NoSuchService,
    NotAuthenticated,
    ResultNotAvailable,
    ResultNotReady,
)
from controlplane.models import Artifact, Layer, ProcessRun
from controlplane.services.access import (
    audiences,
    is_anonymous,
    process_access_check,
    process_allowed,
)
from controlplane.services.artifacts import artifact_open, output_decode
from controlplane.services.execution import _result_from_run
from controlplane.services.gpservices import GPServiceRow, gpservice_rows
from controlplane.services.layers import layer_info, layer_source
from controlplane.services.policy import (
    policy_cached,
    process_resolve,
    processes_resolve,
    tenant_get,
)
from controlplane.services.uploads import (  # reads of uploads, re-exported for adapters
    upload_bytes,
    upload_get,
    upload_part_numbers,
    uploads_info,
)
from executors.base import InvalidInput
from executors.geodata import write_features
from executors.layers import filters
from executors.layers.source import LayerSource, source_count, source_read
from executors.spatialref import reproject, transformer

_LIST_FIELDS = (
    "id", "tenant_id", "process_id", "status", "mode", "surface", "progress", "progress_message",
    "created_at", "started_at", "finished_at", "updated_at", "dismissed_at", "tier_used",
    "error", "output_links", "request", "results_removed_at",
)


def process_get(*, principal: Principal, process_id: str) -> ProcessSpec:
    """A process the principal may run (NoSuchProcess otherwise; anonymous: NotAuthenticated)."""
    spec = process_resolve(principal=principal, process_id=process_id).spec
    process_access_check(principal=principal, process_id=spec.id)
    return spec


def processes_for_principal(*, principal: Principal) -> list[ProcessSpec]:
    """The processes the principal may run, by id (the others are not listed)."""
    return [
        r.spec for r in processes_resolve(principal=principal)
        if process_allowed(principal=principal, process_id=r.spec.id)
    ]


# --- GP services ----------------------------------------------------------------------------


def _gp_specs(principal: Principal, *, runnable_only: bool = True) -> tuple[GPServiceSpec, ...]:
    """Every enabled service with the tasks this principal may run, in position order;
    services left with no task are hidden. Cached like the policy lookups it is built from
    (they depend on the tenant and the principal's audiences). ``runnable_only=False``: every
    task the tenant has, whoever asks (to tell an anonymous caller to authenticate)."""

    def load() -> tuple[GPServiceSpec, ...]:
        runnable = {
            r.spec.id: r.spec for r in processes_resolve(principal=principal)
            if not runnable_only or process_allowed(principal=principal, process_id=r.spec.id)
        }
        rows: list[GPServiceRow] = policy_cached(("gpservices",), gpservice_rows)
        out = []
        for row in rows:
            tasks = tuple(runnable[pid] for pid in row.task_ids if pid in runnable)
            if tasks:
                out.append(
                    GPServiceSpec(
                        folder=row.folder,
                        name=row.name,
                        description=row.description,
                        execution_type=row.execution_type,
                        tasks=tasks,
                        maximum_records=row.maximum_records,
                    )
                )
        return tuple(out)

    who = ",".join(audiences(principal)) if runnable_only else "*"
    return policy_cached(("gpservices", principal.tenant, who), load)


def gp_folders(*, principal: Principal) -> list[str]:
    """Folders (not the root) holding at least one service this principal can see."""
    folders = {s.folder for s in _gp_specs(principal) if s.folder}
    return sorted(folders, key=str.lower)


def gp_services(*, principal: Principal, folder: str) -> list[GPServiceSpec]:
    """The visible services directly in ``folder`` ("" for the root), by name.
    Folder names match without regard to case, as Esri's URLs do."""
    wanted = folder.lower()
    return [s for s in _gp_specs(principal) if s.folder.lower() == wanted]


def gp_service_get(*, principal: Principal, folder: str, name: str) -> GPServiceSpec:
    """One visible service; NoSuchService when absent, disabled or without runnable tasks."""
    wanted = (folder.lower(), name.lower())
    for spec in _gp_specs(principal):
        if (spec.folder.lower(), spec.name.lower()) == wanted:
            return spec
    path = f"{folder}/{name}" if folder else name
    if is_anonymous(principal) and any(
        (s.folder.lower(), s.name.lower()) == wanted for s in _gp_specs(principal, runnable_only=False)
    ):
        raise NotAuthenticated(f"GP service {path!r} requires authentication: send a token")
    raise NoSuchService(f"no GP service {path!r}")


def gp_task_get(*, principal: Principal, service: GPServiceSpec, task: str) -> ProcessSpec:
    """A task of a visible service, by name (else without regard to case); NoSuchProcess when
    the service has no such task for this principal (an anonymous caller is told to
    authenticate when the tenant has the task but keeps it from anonymous callers)."""

    def find(tasks: tuple[ProcessSpec, ...]) -> ProcessSpec | None:
        return next((t for t in tasks if t.id == task), None) or next(
            (t for t in tasks if t.id.lower() == task.lower()), None
        )

    spec = find(service.tasks)
    if spec is not None:
        return spec
    if is_anonymous(principal):
        full = next((s for s in _gp_specs(principal, runnable_only=False) if s.path == service.path), None)
        if full is not None and find(full.tasks) is not None:
            raise NotAuthenticated(f"task {task!r} requires authentication: send a token")
    raise NoSuchProcess(f"no task {task!r} in GP service {service.path!r}")


# --- runs ------------------------------------------------------------------------------------


def _runs(principal: Principal) -> QuerySet[ProcessRun]:
    """The tenant's runs; an anonymous caller reaches only the runs made anonymously."""
    query = ProcessRun.objects.filter(tenant_id=tenant_get(principal.tenant).pk)
    return query.filter(user__isnull=True) if is_anonymous(principal) else query


def run_owner(*, principal: Principal, run_id: str | uuid.UUID) -> int | None:
    """The user who submitted a run of the caller's (NoSuchJob for anyone else's)."""
    row = _runs(principal).filter(id=run_id_parse(run_id)).values_list("user_id").first()
    if row is None:
        raise NoSuchJob(f"no job {run_id}")
    return row[0]


def run_id_parse(run_id: str | uuid.UUID) -> uuid.UUID:
    try:
        return run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id))
    except ValueError:
        raise NoSuchJob(f"no job {run_id}") from None


def run_get(*, principal: Principal, run_id: str | uuid.UUID, with_outputs: bool = False) -> ExecutionResult:
    """One run of the caller's tenant, as adapters see it."""
    query = _runs(principal).filter(id=run_id_parse(run_id)).defer("inputs")
    if not with_outputs:
        query = query.defer("outputs")
    run = query.first()
    if run is None:
        raise NoSuchJob(f"no job {run_id}")
    result = _result_from_run(run)
    if not with_outputs:
        object.__setattr__(result, "outputs", None)
    return result


def run_outputs(*, principal: Principal, run_id: str | uuid.UUID) -> tuple[ExecutionResult, dict[str, Any]]:
    """A finished run and its outputs by name (spilled artifacts read back when transmitted
    by value; by-reference outputs stay links). ResultNotReady while it runs."""
    result = run_get(principal=principal, run_id=run_id, with_outputs=True)
    if result.dismissed:
        raise ResultNotAvailable(f"job {result.run_id} was dismissed; its results were removed")
    if not result.is_finished:
        raise ResultNotReady(f"job {result.run_id} is {result.status.value}; results are not ready")
    if result.status is not RunStatus.SUCCEEDED:
        return result, {}
    if result.outputs is None:
        raise ResultNotAvailable(f"the results of job {result.run_id} were removed")
    values = dict(result.outputs)
    for name, link in result.output_links.items():
        if link.get("transmission", "value") == "value":
            values[name] = artifact_value(principal=principal, link=link)
    return result, values


@dataclass(frozen=True)
class RunLedger:
    """A run's ledger facts beyond its status: tiers tried and why, cost, input size."""

    process_version: str
    resource_class: str
    tier_order: tuple[str, ...]
    tiers_tried: tuple[dict[str, Any], ...]  # [{tier, outcome, reason, at}]
    cost_estimated: float
    cost_actual: float | None
    input_bytes: int
    feature_count: int
    vertex_count: int
    attempt_count: int
    principal: str


def run_ledger(*, principal: Principal, run_id: str | uuid.UUID) -> RunLedger:
    """The ledger facts of one run of the caller's tenant (NoSuchJob for anyone else's)."""
    run = (
        _runs(principal)
        .filter(id=run_id_parse(run_id))
        .only(
            "process_version", "resource_class", "tier_order", "tiers_tried", "cost_estimated",
            "cost_actual", "input_bytes", "feature_count", "vertex_count", "attempt_count", "principal",
        )
        .first()
    )
    if run is None:
        raise NoSuchJob(f"no job {run_id}")
    return RunLedger(
        process_version=run.process_version,
        resource_class=run.resource_class,
        tier_order=tuple(run.tier_order or ()),
        tiers_tried=tuple(run.tiers_tried or ()),
        cost_estimated=run.cost_estimated,
        cost_actual=run.cost_actual,
        input_bytes=run.input_bytes,
        feature_count=run.feature_count,
        vertex_count=run.vertex_count,
        attempt_count=run.attempt_count,
        principal=run.principal,
    )


def run_inputs(*, principal: Principal, run_id: str | uuid.UUID) -> dict[str, Any]:
    row = _runs(principal).filter(id=run_id_parse(run_id)).values_list("inputs", flat=True).first()
    if row is None:
        raise NoSuchJob(f"no job {run_id}")
    return row


def artifact_value(*, principal: Principal, link: dict[str, Any]) -> Any:
    """The value of an output stored as an artifact (see ``output_encode``)."""
    art = artifact_get(principal=principal, artifact_id=link["artifact"])
    return output_decode(artifact_open(art).read_bytes(), link)


def artifact_get(*, principal: Principal | None, artifact_id: str) -> Artifact:
    """An artifact, scoped to the principal's tenant (None: a signed link was checked)."""
    try:
        aid = uuid.UUID(str(artifact_id))
    except ValueError:
        raise NoSuchOutput("no such artifact") from None
    query = Artifact.objects.filter(id=aid)
    if principal is not None:
        query = query.filter(tenant_id=tenant_get(principal.tenant).pk)
    art = query.first()
    if art is None or (art.expires_at and art.expires_at < timezone.now()):
        raise NoSuchOutput("no such artifact, or it has expired")
    return art


@dataclass(frozen=True)
class RunFilter:
    process_ids: tuple[str, ...] = ()
    statuses: tuple[RunStatus, ...] = ()
    surfaces: tuple[Surface, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    # None: no constraint. False: leave out dismissed runs (dismissed_at set, or cancelled).
    # True: dismissed runs are wanted too: (statuses, not dismissed) OR dismissed; with no
    # statuses, only dismissed runs.
    dismissed: bool | None = None
    run_ids: tuple[uuid.UUID, ...] = ()  # the job browser's search by id


@dataclass(frozen=True)
class RunPage:
    results: list[ExecutionResult]
    next_cursor: str | None
    prev_offset: int | None


def runs_for_tenant(
    *, principal: Principal, filters: RunFilter, limit: int, offset: int = 0
) -> RunPage:
    """A page of the tenant's runs, newest first, without inputs or outputs loaded."""
    query = _runs(principal)
    if filters.process_ids:
        query = query.filter(process_id__in=filters.process_ids)
    if filters.run_ids:
        query = query.filter(id__in=filters.run_ids)
    gone = Q(dismissed_at__isnull=False) | Q(status=RunStatus.CANCELLED.value)
    wanted = Q(status__in=[s.value for s in filters.statuses]) if filters.statuses else Q()
    if filters.dismissed is None:
        query = query.filter(wanted)
    elif filters.dismissed:
        query = query.filter((wanted & ~gone) | gone) if filters.statuses else query.filter(gone)
    else:
        query = query.filter(wanted & ~gone)
    if filters.surfaces:
        query = query.filter(surface__in=[s.value for s in filters.surfaces])
    if filters.created_after:
        query = query.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        query = query.filter(created_at__lte=filters.created_before)
    if filters.min_duration is not None or filters.max_duration is not None:
        from django.db.models import DurationField, ExpressionWrapper, F
        from django.db.models.functions import Coalesce, Now

        query = query.filter(started_at__isnull=False).annotate(
            duration=ExpressionWrapper(
                Coalesce(F("finished_at"), Now()) - F("started_at"), output_field=DurationField()
            )
        )
        from datetime import timedelta

        if filters.min_duration is not None:
            query = query.filter(duration__gte=timedelta(seconds=filters.min_duration))
        if filters.max_duration is not None:
            query = query.filter(duration__lte=timedelta(seconds=filters.max_duration))
    rows = list(query.order_by("-created_at", "-id").only(*_LIST_FIELDS)[offset : offset + limit + 1])
    more = len(rows) > limit
    results = []
    for run in rows[:limit]:
        result = _result_from_run(run)
        object.__setattr__(result, "outputs", None)
        results.append(result)
    return RunPage(
        results=results,
        next_cursor=str(offset + limit) if more else None,
        prev_offset=max(0, offset - limit) if offset > 0 else None,
    )


@dataclass(frozen=True)
class ActiveRuns:
    """How many active runs of one resource class are in one status, and the oldest's age."""

    resource_class: str
    status: str
    count: int
    oldest_seconds: float


# Constant literals (no input), the same list as the predicate of run_active_class_idx, so the
# planner can prove the partial index applies and reads the active runs only.
_ACTIVE_SUMMARY_SQL = """
SELECT resource_class, status, count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
  FROM controlplane_processrun
 WHERE status IN ('cancelling', 'queued', 'running', 'waiting')
 GROUP BY resource_class, status
"""


def runs_active_summary(*, timeout_ms: int) -> list[ActiveRuns]:
    """Operators' aggregate over every tenant's active runs (counts only, no tenant data),
    bounded by a statement timeout so that a busy database cannot stall a metrics scrape."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, true)",
            [f"{max(1, timeout_ms)}ms"],
        )
        previous = cur.fetchone()[0]
        cur.execute(_ACTIVE_SUMMARY_SQL)
        rows = cur.fetchall()
        cur.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
    return [ActiveRuns(rc, status, int(n), float(age or 0.0)) for rc, status, n, age in rows]


__all__ = [
    "Q",
    "RunFilter",
    "RunLedger",
    "RunPage",
    "upload_bytes",
    "upload_get",
    "upload_part_numbers",
    "uploads_info",
]


# --- layers ----------------------------------------------------------------------------------


def _layer(principal: Principal, collection_id: str) -> Layer:
    """A layer of the principal's tenant; the same NoSuchLayer for unknown and another's."""
    if not principal.tenant:
        raise NotAuthenticated("sign in to read layers")
    layer = (
        Layer.objects.select_related("artifact")
        .filter(tenant_id=tenant_get(principal.tenant).pk, collection_id=str(collection_id))
        .first()
    )
    if layer is None or (layer.expires_at is not None and layer.expires_at <= timezone.now()):
        raise NoSuchLayer(f"no collection {collection_id!r}")
    return layer


def layers_for_principal(*, principal: Principal) -> list[LayerInfo]:
    """The layers of the principal's tenant (any principal of the tenant may read them)."""
    now = timezone.now()
    layers = Layer.objects.filter(tenant_id=tenant_get(principal.tenant).pk).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    ).order_by("collection_id")
    return [layer_info(layer) for layer in layers]


def layer_for_principal(*, principal: Principal, collection_id: str) -> LayerInfo:
    return layer_info(_layer(principal, collection_id))


def _bbox(bbox: Any) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        values = tuple(float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterValue("bbox must be four numbers: minx, miny, maxx, maxy") from exc
    if len(values) == 6:  # 3D bbox: minx, miny, minz, maxx, maxy, maxz
        values = (values[0], values[1], values[3], values[4])
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidParameterValue("bbox must be four numbers: minx, miny, maxx, maxy")
    if values[0] > values[2] or values[1] > values[3]:
        raise InvalidParameterValue("bbox must have minx <= maxx and miny <= maxy")
    return values  # type: ignore[return-value]


def _parse_filter(layer: Layer, text: str | None, lang: str) -> dict[str, Any] | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        ast = filters.filter_parse(text, lang=lang)
    except filters.FilterError as exc:
        where = f" at position {exc.position}" if getattr(exc, "position", None) is not None else ""
        raise InvalidParameterValue(f"filter{where}: {exc.message}", details=[str(text)]) from exc
    known = {f["name"] for f in layer.fields or []}
    unknown = sorted(set(filters.filter_properties(ast)) - known)
    if unknown:
        raise InvalidParameterValue(
            f"filter: collection {layer.collection_id!r} has no propert{'y' if len(unknown) == 1 else 'ies'} "
            + ", ".join(repr(u) for u in unknown)
            + "; its properties: "
            + (", ".join(sorted(known)) or "none")
        )
    return dict(ast)


def _selected(
    layer: Layer, bbox: Any, bbox_srid: int, filter: str | None, filter_lang: str
) -> LayerSource:
    source = layer_source(layer)
    box = _bbox(bbox)
    if box is not None:
        try:
            transformer(int(bbox_srid), layer.srid)
        except Exception as exc:  # noqa: BLE001 - pyproj raises several kinds for a bad code
            raise InvalidParameterValue(f"unknown bbox spatial reference EPSG:{bbox_srid}") from exc
    return LayerSource.from_json(
        {
            **source.to_json(),
            "bbox": box,
            "bbox_srid": int(bbox_srid),
            "filter": _parse_filter(layer, filter, filter_lang),
        }
    )


def layer_source_for(
    *,
    principal: Principal,
    collection_id: str,
    bbox: Any = None,
    bbox_srid: int = 4326,
    filter: str | None = None,
    filter_lang: str = "cql2-text",
) -> tuple[LayerSource, int]:
    """The executor descriptor of a layer of the tenant with the selection, and how many
    features it selects."""
    layer = _layer(principal, collection_id)
    source = _selected(layer, bbox, bbox_srid, filter, filter_lang)
    try:
        return source, source_count(source)
    except InvalidInput as exc:
        raise InvalidParameterValue(str(exc)) from exc


def layer_items(
    *,
    principal: Principal,
    collection_id: str,
    bbox: Any = None,
    bbox_srid: int = 4326,
    limit: int = 10,
    offset: int = 0,
    filter: str | None = None,
    filter_lang: str = "cql2-text",
    out_srid: int | None = 4326,
) -> LayerPage:
    """One page of a layer's features (ids in order), in ``out_srid`` (None: the layer's)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidParameterValue("limit must be a whole number, 0 or more")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue("offset must be a whole number, 0 or more")
    layer = _layer(principal, collection_id)
    source = _selected(layer, bbox, bbox_srid, filter, filter_lang)
    try:
        matched = source_count(source)
        features = source_read(source, limit=limit, offset=offset) if limit else source_read(source, limit=0)
    except InvalidInput as exc:
        raise InvalidParameterValue(str(exc)) from exc
    if out_srid is not None and out_srid != features.srid and len(features):
        features = features.replace(reproject(features.geometries, features.srid, out_srid), srid=out_srid)
    elif out_srid is not None:
        features = features.replace(srid=out_srid)
    return LayerPage(features=write_features(features), number_matched=matched, number_returned=len(features))
