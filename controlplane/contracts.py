"""The one internal contract between adapters, the control plane and executors.

Everything here is JSON-safe so a request can be stored on a run and shipped to another
process or host (the batch tier). Internal value encodings (what an adapter must produce
from its wire format and what executors return):

- string / integer / number / boolean: the plain JSON value.
- datetime: RFC 3339 string (UTC).
- linear_unit: ``{"value": 100.0, "unit": "meter"}`` (unit names in ``LINEAR_UNITS``).
- geometry: a GeoJSON geometry object plus ``"srid": <int>`` (x/y = lon/lat or easting/northing).
- feature_collection: ``{"type": "FeatureCollection", "srid": <int>, "features": [GeoJSON
  Feature, ...]}``; optional ``"fields"`` (list of ``{"name", "type"}``) keeps attribute
  types for adapters that need them (Esri).
- bbox: ``{"bbox": [minx, miny, maxx, maxy], "srid": <int>}``.
- spatial_reference: ``{"srid": <int>}`` (or ``{"wkt": "..."}``).
- file / raster: ``{"href": "...", "media_type": "..."}``, inline bytes ``{"value": "<base64>",
  "media_type": "...", "encoding": "base64"}``, or an uploaded item ``{"upload": "<item id>"}``
  (what an adapter makes of GPServer ``{"itemID": ...}``). ``run_submit`` checks the upload
  is the tenant's and committed, and stores it on the run as ``{"artifact": "<artifact id>",
  "media_type", "size", "name", "upload": "<item id>"}``; executors receive the bytes, as
  ``{"value": "<base64>", "media_type", "encoding": "base64", "name"}``. A geometry or
  feature_collection input may also be ``{"upload": "<item id>"}`` of an uploaded GeoJSON
  file: ``run_submit`` replaces it with the file's content before validation.
- A geometry or feature_collection input may also be a reference to a catalog layer of the
  tenant (``LayerInfo``): ``{"layer": "<collection id>", "bbox": [minx, miny, maxx, maxy] or
  absent, "bbox_srid": <int> (default 4326), "filter": "<text>" or absent, "filter_lang":
  "cql2-text" | "sql-where"}``. Adapters pass the filter text as the client wrote it (OGC
  CQL2 text; GPServer where clause); ``run_submit`` checks the layer is the tenant's, parses
  the filter (``executors.layers.filters``), counts the features for admission and stores
  on the run a ``{"source": {...}}`` descriptor that executors read (``executors.layers``):
  database tiers read the layer where it lives, the others get its features.
- multi: a list of values of the item type.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from executors.units import LINEAR_UNITS  # noqa: F401  (re-exported for adapters)


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    WAITING = "waiting"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT}
)
ACTIVE_STATUSES = frozenset(
    {RunStatus.QUEUED, RunStatus.WAITING, RunStatus.RUNNING, RunStatus.CANCELLING}
)


class ExecutionMode(enum.StrEnum):
    SYNC = "sync"
    ASYNC = "async"


class Tier(enum.StrEnum):
    INPROCESS = "inprocess"
    POSTGIS = "postgis"
    BATCH = "batch"


class Surface(enum.StrEnum):
    OGC = "ogc"
    GPSERVER = "gpserver"
    BROWSER = "browser"
    INTERNAL = "internal"


class ResourceClass(enum.StrEnum):
    CPU_BURST = "cpu_burst"
    DB_HEAVY = "db_heavy"
    PYTHON_BATCH = "python_batch"
    LONG_TAIL = "long_tail"


class ParamType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    LINEAR_UNIT = "linear_unit"
    GEOMETRY = "geometry"
    FEATURE_COLLECTION = "feature_collection"
    BBOX = "bbox"
    SPATIAL_REFERENCE = "spatial_reference"
    FILE = "file"
    RASTER = "raster"
    OBJECT = "object"


class MessageType(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class ParamSpec:
    """One input or output of a process, as declared in the catalog."""

    name: str
    type: ParamType
    title: str = ""
    description: str = ""
    required: bool = True
    default: Any = None
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    multi: bool = False
    max_items: int | None = None
    geometry_types: tuple[str, ...] = ()
    media_types: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "type": self.type.value}
        for key in ("title", "description", "default", "minimum", "maximum", "max_items"):
            value = getattr(self, key)
            if value not in (None, ""):
                doc[key] = value
        if not self.required:
            doc["required"] = False
        if self.multi:
            doc["multi"] = True
        for key in ("choices", "geometry_types", "media_types"):
            if getattr(self, key):
                doc[key] = list(getattr(self, key))
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ParamSpec:
        return cls(
            name=doc["name"],
            type=ParamType(doc["type"]),
            title=doc.get("title", ""),
            description=doc.get("description", ""),
            required=doc.get("required", True),
            default=doc.get("default"),
            choices=tuple(doc.get("choices", ())),
            minimum=doc.get("minimum"),
            maximum=doc.get("maximum"),
            multi=doc.get("multi", False),
            max_items=doc.get("max_items"),
            geometry_types=tuple(doc.get("geometry_types", ())),
            media_types=tuple(doc.get("media_types", ())),
        )


@dataclass(frozen=True)
class ProcessSpec:
    """What adapters need to describe a process (built from a ProcessDefinition)."""

    id: str
    version: str
    title: str
    description: str
    keywords: tuple[str, ...]
    inputs: tuple[ParamSpec, ...]
    outputs: tuple[ParamSpec, ...]
    modes: tuple[ExecutionMode, ...]
    default_mode: ExecutionMode
    tiers: tuple[Tier, ...]
    resource_class: ResourceClass

    def input(self, name: str) -> ParamSpec | None:
        return next((p for p in self.inputs if p.name == name), None)

    def output(self, name: str) -> ParamSpec | None:
        return next((p for p in self.outputs if p.name == name), None)


class GPExecutionType(enum.StrEnum):
    SYNC = "esriExecutionTypeSynchronous"
    ASYNC = "esriExecutionTypeAsynchronous"


@dataclass(frozen=True)
class GPServiceSpec:
    """A GP service as the GPServer surface shows it: processes grouped under a folder,
    with the execution type Esri clients follow (every task still accepts both modes)."""

    folder: str  # "" for the root folder
    name: str
    description: str
    execution_type: GPExecutionType
    tasks: tuple[ProcessSpec, ...]
    maximum_records: int = 1000

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.name}" if self.folder else self.name

    def task(self, name: str) -> ProcessSpec | None:
        return next((t for t in self.tasks if t.id == name), None)


@dataclass(frozen=True)
class OutputRequest:
    """How the client wants one output: inline value or by reference, and a media type."""

    transmission: str = "value"  # "value" | "reference"
    media_type: str | None = None
    # Publish this (feature collection) output as a layer of the tenant when the run
    # succeeds: {"collection_id": str, "title": str, "ttl_seconds": int | None}
    # (OGC ``registerAs``; GPServer ``esri_out_feature_service_name``).
    register_as: dict[str, Any] | None = None


@dataclass(frozen=True)
class Subscriber:
    success_uri: str | None = None
    failed_uri: str | None = None
    in_progress_uri: str | None = None

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


@dataclass(frozen=True)
class Principal:
    """Who is asking: a tenant slug and a user (None for anonymous)."""

    tenant: str
    user_id: int | None = None
    username: str = "anonymous"
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecutionRequest:
    """A client's request to run a process, in internal terms."""

    process_id: str
    inputs: dict[str, Any]
    principal: Principal
    surface: Surface
    mode: ExecutionMode | None = None  # None: the client did not ask
    outputs: dict[str, OutputRequest] = field(default_factory=dict)
    response: str = "raw"  # OGC "raw" | "document"; kept to replay results
    subscriber: Subscriber | None = None
    out_srid: int | None = None
    process_srid: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # surface details to keep (returnZ...)
    trace_parent: str | None = None
    request_bytes: int = 0

    def input_hash(self) -> str:
        """sha256 of the canonical JSON of process id and inputs."""
        payload = orjson.dumps(
            {"process": self.process_id, "inputs": self.inputs}, option=orjson.OPT_SORT_KEYS
        )
        return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class RunMessage:
    type: MessageType
    text: str
    time: str  # RFC 3339


@dataclass(frozen=True)
class ExecutionResult:
    """A run as adapters see it: status, progress, messages, outputs or error."""

    run_id: uuid.UUID
    process_id: str
    status: RunStatus
    mode: ExecutionMode
    surface: Surface
    progress: int
    messages: tuple[RunMessage, ...]
    created: str
    started: str | None
    finished: str | None
    updated: str
    outputs: dict[str, Any] | None  # name -> internal value, or {"href", "media_type"} link
    output_links: dict[str, dict[str, Any]]  # name -> {"href", "media_type", "expires"}
    error: dict[str, Any] | None  # {"code", "message", "details"}
    request: dict[str, Any]  # the stored request options (response, outputs, out_srid, ...)
    tier_used: Tier | None = None
    inputs: dict[str, Any] | None = None
    dismissed: bool = False  # the client dismissed the job (its results are gone)
    trace_parent: str | None = None  # W3C traceparent the run was recorded under
    progress_message: str = ""  # the executor's latest word on its progress

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class LayerInfo:
    """A catalog layer as adapters see it (OGC API - Features collection, GPServer URL input)."""

    id: str  # collection id, unique per tenant ([A-Za-z0-9_.-], starts with a letter)
    title: str
    description: str
    storage: str  # "postgis" (a table in this database) | "file" (read through GDAL)
    source: str  # what the data is, for people: "table public.roads", "GeoPackage roads.gpkg"
    srid: int
    geometry_type: str  # GeoJSON type name, multi-types after normalisation; "Geometry" if mixed
    fields: tuple[dict[str, str], ...]  # [{"name", "type"}] with the internal field types
    extent: tuple[float, float, float, float] | None  # in EPSG:4326
    feature_count: int
    created: str  # RFC 3339
    expires: str | None = None  # RFC 3339, for layers published with a TTL
    run_id: str | None = None  # the run whose output this layer is


@dataclass(frozen=True)
class LayerPage:
    """One page of a layer's features (OGC API - Features items)."""

    features: dict[str, Any]  # internal feature_collection encoding, with feature "id"s
    number_matched: int
    number_returned: int


def new_run_id() -> uuid.UUID:
    return uuid.uuid4()
