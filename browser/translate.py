"""The job browser's translation: HTML form fields -> internal inputs, runs -> page context.

Pure functions, like the API surfaces' ``translate.py``: the views parse, make one
control-plane call and render what these return. Esri JSON downloads reuse the GPServer
adapter's FeatureSet writer, so both show a feature output the same way.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import orjson

from controlplane import exceptions as errors
from controlplane.contracts import (
    LINEAR_UNITS,
    ExecutionMode,
    ExecutionRequest,
    ExecutionResult,
    ParamSpec,
    ParamType,
    Principal,
    ProcessSpec,
    RunStatus,
    Surface,
)
from controlplane.selectors import RunFilter, RunLedger
from controlplane.services.uploads import geojson_input
from gpserver.translate import RenderOptions, featureset_out

INPUT_PREFIX = "in_"
PAGE_SIZE = 25
# The map preview embeds features in the page: past this many bytes of GeoJSON a layer is
# left to the downloads (a browser draws a few MB of vectors, not hundreds).
MAP_MAX_BYTES = 2 * 1024 * 1024
# Spatial references the map draws: lon/lat, and Web Mercator (unprojected in the browser).
MAP_SRIDS = (4326, 3857)
GEOJSON = "application/geo+json"
ESRI_JSON = "application/json"

STATUS_LABELS = {
    RunStatus.QUEUED: "Queued",
    RunStatus.WAITING: "Waiting",
    RunStatus.RUNNING: "Running",
    RunStatus.CANCELLING: "Cancelling",
    RunStatus.SUCCEEDED: "Succeeded",
    RunStatus.FAILED: "Failed",
    RunStatus.CANCELLED: "Cancelled",
    RunStatus.TIMED_OUT: "Timed out",
}
SURFACE_LABELS = {
    Surface.GPSERVER: "GPServer",
    Surface.OGC: "OGC API",
    Surface.BROWSER: "Job browser",
    Surface.INTERNAL: "Internal",
}
MODE_LABELS = {ExecutionMode.SYNC: "Wait for the result (sync)", ExecutionMode.ASYNC: "Run as a job (async)"}
_SCALAR_MULTI = (ParamType.STRING, ParamType.INTEGER, ParamType.NUMBER)
_FEATURES = (ParamType.FEATURE_COLLECTION, ParamType.GEOMETRY)


# --- the process form ------------------------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    """One input of a process as a form control (``widget`` picks the template's markup)."""

    name: str  # the control's name (and id without "id_")
    param: str
    title: str
    description: str
    widget: str  # text | select | integer | number | checkbox | datetime | linear_unit |
    #              geojson | bbox | srid | file | json | list
    required: bool
    value: str = ""
    checked: bool = False
    choices: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    unit: str = "meter"
    minimum: float | None = None
    maximum: float | None = None
    accept: str = ""
    hint: str = ""


def _widget(p: ParamSpec) -> tuple[str, str]:
    """The widget of a parameter and the hint shown under it."""
    if p.multi:
        if p.type in _SCALAR_MULTI:
            return "list", "Several values, separated by commas."
        return "json", "A JSON array of values."
    t = p.type
    if t is ParamType.STRING:
        return ("select", "") if p.choices else ("text", "")
    if t is ParamType.INTEGER:
        return "integer", ""
    if t is ParamType.NUMBER:
        return "number", ""
    if t is ParamType.BOOLEAN:
        return "checkbox", ""
    if t is ParamType.DATETIME:
        return "datetime", "UTC."
    if t is ParamType.LINEAR_UNIT:
        return "linear_unit", ""
    if t in _FEATURES:
        kind = "geometry" if t is ParamType.GEOMETRY else "FeatureCollection, Feature or geometry"
        return "geojson", f"GeoJSON ({kind}) in EPSG:4326 unless it names a crs; or choose a file."
    if t is ParamType.BBOX:
        return "bbox", "minx, miny, maxx, maxy in EPSG:4326 (lon/lat)."
    if t is ParamType.SPATIAL_REFERENCE:
        return "srid", "An EPSG code, e.g. 4326."
    if t in (ParamType.FILE, ParamType.RASTER):
        return "file", ""
    return "json", "A JSON value."


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and value.get("type") == "FeatureCollection":
        value = {k: v for k, v in value.items() if k not in ("srid", "fields")}
    return orjson.dumps(value).decode()


def form_fields(spec: ProcessSpec, data: Mapping[str, Any] | None = None) -> list[FormField]:
    """The controls of a process's form, filled from ``data`` (a re-shown form) or defaults."""
    given = data or {}
    fields = []
    for p in spec.inputs:
        name = INPUT_PREFIX + p.name
        widget, hint = _widget(p)
        default: Any = p.default
        if widget == "linear_unit" and isinstance(default, dict):
            value, unit = _text(default.get("value")), str(default.get("unit") or "meter")
        elif widget == "list" and isinstance(default, list):
            value, unit = ", ".join(_text(v) for v in default), "meter"
        else:
            value, unit = _text(default), "meter"
        checked = bool(default) if widget == "checkbox" else False
        if data is not None:
            value = str(given.get(name, "") or "")
            unit = str(given.get(name + "_unit") or unit)
            checked = name in given
        media = ",".join(p.media_types)
        fields.append(
            FormField(
                name=name, param=p.name, title=p.title or p.name, description=p.description,
                widget=widget, required=p.required, value=value, checked=checked,
                choices=tuple(str(c) for c in p.choices), units=tuple(LINEAR_UNITS), unit=unit,
                minimum=p.minimum, maximum=p.maximum,
                accept=".geojson,.json,application/geo+json,application/json" if widget == "geojson" else media,
                hint=hint,
            )
        )
    return fields


def mode_choices(spec: ProcessSpec, chosen: str | None = None) -> list[dict[str, Any]]:
    """The execution modes the process offers, as radio buttons (its default checked)."""
    pick = chosen if chosen in {m.value for m in spec.modes} else spec.default_mode.value
    return [{"value": m.value, "label": MODE_LABELS[m], "checked": m.value == pick} for m in spec.modes]


@dataclass(frozen=True)
class UploadedFile:
    """A file chosen in the form: its bytes, media type and name."""

    data: bytes
    media_type: str
    name: str


def _bad(p: ParamSpec, why: str) -> errors.InvalidParameterValue:
    return errors.InvalidParameterValue(f"{p.title or p.name}: {why}", details=[f"input {p.name!r}"])


def _json(p: ParamSpec, text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _bad(p, f"not valid JSON ({exc.msg} at character {exc.pos})") from None


def _number(p: ParamSpec, text: str, *, integer: bool) -> int | float:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        raise _bad(p, f"{text!r} is not a {'whole ' if integer else ''}number") from None


def _srid(p: ParamSpec, doc: dict[str, Any]) -> int:
    """The EPSG code a GeoJSON document names in its (2008) ``crs`` member; 4326 without."""
    crs = doc.get("crs")
    if crs is None:
        return 4326
    name = str((crs.get("properties") or {}).get("name") if isinstance(crs, dict) else crs)
    if "CRS84" in name.upper():
        return 4326
    found = re.search(r"(?:EPSG(?:/0/|::?))(\d+)$", name, re.IGNORECASE)
    if not found:
        raise _bad(p, f"unrecognised crs {name!r}; use an EPSG code")
    return int(found.group(1))


def _geojson(p: ParamSpec, text: str) -> dict[str, Any]:
    doc = _json(p, text)
    if not isinstance(doc, dict):
        raise _bad(p, "GeoJSON is a JSON object")
    srid = _srid(p, doc)
    doc = {k: v for k, v in doc.items() if k != "crs"}
    return geojson_input(doc, srid=srid, geometry=p.type is ParamType.GEOMETRY)


def _datetime(p: ParamSpec, text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(p, f"{text!r} is not a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _item(p: ParamSpec, text: str) -> Any:
    t = p.type
    if t is ParamType.INTEGER:
        return _number(p, text, integer=True)
    if t is ParamType.NUMBER:
        return _number(p, text, integer=False)
    return text


def _input(p: ParamSpec, data: Mapping[str, Any], files: Mapping[str, UploadedFile]) -> tuple[bool, Any]:
    """(given, internal value) of one input from the submitted form."""
    name = INPUT_PREFIX + p.name
    widget, _ = _widget(p)
    text = str(data.get(name, "") or "").strip()
    # A GeoJSON file has a control of its own: one name for two controls would leave the
    # file's empty part (no file chosen) in place of the text.
    upload = files.get(name + "_file" if widget == "geojson" else name)
    if widget == "checkbox":
        return True, name in data
    if widget == "file":
        if upload is None:
            return False, None
        media = upload.media_type or (p.media_types[0] if p.media_types else "application/octet-stream")
        if p.media_types and "application/octet-stream" not in p.media_types and media not in p.media_types:
            media = p.media_types[0]  # browsers guess from the file name; the content is checked later
        return True, {"value": base64.b64encode(upload.data).decode(), "media_type": media, "encoding": "base64"}
    if widget == "geojson" and upload is not None and upload.data.strip():
        text = upload.data.decode("utf-8-sig", errors="replace").strip()
    if not text:
        return False, None
    if widget == "list":
        return True, [_item(p, part.strip()) for part in text.split(",") if part.strip()]
    if widget == "json":
        return True, _json(p, text)
    if widget == "geojson":
        return True, _geojson(p, text)
    if widget == "linear_unit":
        unit = str(data.get(name + "_unit") or "meter")
        if unit not in LINEAR_UNITS:
            raise _bad(p, f"unknown unit {unit!r}")
        return True, {"value": _number(p, text, integer=False), "unit": unit}
    if widget == "datetime":
        return True, _datetime(p, text)
    if widget == "bbox":
        parts = [s for s in re.split(r"[,\s]+", text) if s]
        if len(parts) not in (4, 6):
            raise _bad(p, "a bounding box is 4 numbers: minx, miny, maxx, maxy")
        return True, {"bbox": [_number(p, s, integer=False) for s in parts], "srid": 4326}
    if widget == "srid":
        return True, {"srid": _number(p, text.upper().removeprefix("EPSG:"), integer=True)}
    return True, _item(p, text)


def form_inputs(
    spec: ProcessSpec, data: Mapping[str, Any], files: Mapping[str, UploadedFile]
) -> dict[str, Any]:
    """The submitted form -> internal input values (blank fields are not given: the control
    plane applies defaults and reports missing required inputs)."""
    inputs = {}
    for p in spec.inputs:
        given, value = _input(p, data, files)
        if given:
            inputs[p.name] = value
    return inputs


def execute_request(
    spec: ProcessSpec,
    data: Mapping[str, Any],
    files: Mapping[str, UploadedFile],
    *,
    principal: Principal,
    request_bytes: int,
    trace_header: str | None = None,
) -> ExecutionRequest:
    """A submitted process form -> the internal request (the browser is its own surface)."""
    wanted = str(data.get("mode") or "")
    modes = {m.value: m for m in ExecutionMode}
    if wanted and wanted not in modes:
        raise errors.InvalidParameterValue(f"mode is {' or '.join(modes)}")
    return ExecutionRequest(
        process_id=spec.id,
        inputs=form_inputs(spec, data, files),
        principal=principal,
        surface=Surface.BROWSER,
        mode=modes.get(wanted),
        trace_parent=trace_header or None,
        request_bytes=request_bytes,
    )


# --- the job list ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    """The job list's filters as the form shows them (and as paging links carry them)."""

    status: str = ""
    process: str = ""
    surface: str = ""
    after: str = ""
    before: str = ""
    q: str = ""
    offset: int = 0
    problems: tuple[str, ...] = field(default_factory=tuple)

    def params(self, **changes: Any) -> dict[str, str]:
        values = {
            "status": self.status, "process": self.process, "surface": self.surface,
            "after": self.after, "before": self.before, "q": self.q, "offset": str(self.offset),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v and v != "0"}


def job_id_parse(text: str) -> uuid.UUID | None:
    """A job id as people paste it: the UUID (with or without dashes) or GPServer's "j" form."""
    text = text.strip()
    if re.fullmatch(r"[jJ][0-9a-fA-F]{32}", text):
        text = text[1:]
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _day(text: str, problems: list[str], label: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"{label}: {text!r} is not a date (YYYY-MM-DD)")
        return None


def list_query(query: Mapping[str, str]) -> tuple[ListQuery, RunFilter]:
    """The job list's query string -> what the form shows and the selector's filter. A value
    the form could not have sent is reported on the page, and left out of the filter."""
    problems: list[str] = []
    status = query.get("status", "")
    statuses = {s.value: s for s in RunStatus}
    if status and status not in statuses:
        problems.append(f"status: unknown status {status!r}")
    surface = query.get("surface", "")
    surfaces = {s.value: s for s in Surface}
    if surface and surface not in surfaces:
        problems.append(f"surface: unknown surface {surface!r}")
    after = _day(query.get("after", ""), problems, "from")
    before = _day(query.get("before", ""), problems, "to")
    q = query.get("q", "").strip()
    run_id = job_id_parse(q) if q else None
    if q and run_id is None:
        problems.append(f"job id: {q!r} is not a job id")
    try:
        offset = max(0, int(query.get("offset", "0") or 0))
    except ValueError:
        offset = 0
    process = query.get("process", "").strip()
    shown = ListQuery(
        status=status, process=process, surface=surface, after=query.get("after", ""),
        before=query.get("before", ""), q=q, offset=offset, problems=tuple(problems),
    )
    filters = RunFilter(
        process_ids=(process,) if process else (),
        statuses=(statuses[status],) if status in statuses else (),
        surfaces=(surfaces[surface],) if surface in surfaces else (),
        created_after=datetime.combine(after, time.min, tzinfo=UTC) if after else None,
        created_before=datetime.combine(before, time.max, tzinfo=UTC) if before else None,
        # A search for an id that is no job id finds nothing (not every job).
        run_ids=(run_id,) if run_id else ((uuid.UUID(int=0),) if q else ()),
    )
    return shown, filters


def status_choices() -> list[tuple[str, str]]:
    return [(s.value, STATUS_LABELS[s]) for s in RunStatus]


def surface_choices() -> list[tuple[str, str]]:
    return [(s.value, SURFACE_LABELS[s]) for s in Surface if s is not Surface.INTERNAL]


# --- a job ----------------------------------------------------------------------------------


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def _when(stamp: str | None) -> str:
    """A timestamp for people: to the second, in UTC."""
    return f"{stamp[:19].replace('T', ' ')} UTC" if stamp else ""


def seconds_text(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def status_badge(result: ExecutionResult) -> dict[str, str]:
    """The label and CSS class of a run's status (a dismissed run says so)."""
    if result.dismissed:
        return {"label": "Dismissed", "css": "dismissed", "status": result.status.value}
    return {"label": STATUS_LABELS[result.status], "css": result.status.value, "status": result.status.value}


def job_row(result: ExecutionResult) -> dict[str, Any]:
    """One line of the job list."""
    return {
        "id": str(result.run_id),
        "process_id": result.process_id,
        "badge": status_badge(result),
        "progress": max(0, min(100, result.progress)),
        "surface": SURFACE_LABELS.get(result.surface, result.surface.value),
        "mode": result.mode.value,
        "created": result.created,
        "created_text": _when(result.created).removesuffix(" UTC"),
        "duration": seconds_text(_duration(result.started, result.finished)),
    }


def job_status(result: ExecutionResult) -> dict[str, Any]:
    """What the job page polls: status, progress and messages (no outputs)."""
    return {
        "id": str(result.run_id),
        "status": result.status.value,
        "badge": status_badge(result),
        "progress": max(0, min(100, result.progress)),
        "finished": result.is_finished,
        "dismissed": result.dismissed,
        "updated": result.updated,
        "step": result.progress_message,
        "messages": [{"type": m.type.value, "text": m.text, "time": m.time} for m in result.messages],
        "error": result.error,
    }


def _feature_count(value: Any) -> int:
    if isinstance(value, dict) and value.get("type") == "FeatureCollection":
        return len(value.get("features") or [])
    return 1 if isinstance(value, dict) else 0


def _geometry_types(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return []
    if value.get("type") == "FeatureCollection":
        kinds = {str((f.get("geometry") or {}).get("type")) for f in value.get("features") or [] if isinstance(f, dict)}
        return sorted(k for k in kinds if k != "None")
    return [str(value.get("type"))]


def value_summary(p: ParamSpec | None, value: Any) -> str:
    """A short text of an input or output value for a table cell."""
    t = p.type if p else None
    if isinstance(value, dict) and isinstance(value.get("source"), dict) and "count" in value:
        source = value["source"]
        noun = "feature" if value["count"] == 1 else "features"
        return f"layer {source.get('layer')!r} ({source.get('label')}): {value['count']} {noun} selected"
    if t in _FEATURES or (isinstance(value, dict) and "srid" in value and "type" in value):
        count = _feature_count(value)
        kinds = ", ".join(_geometry_types(value)) or "no geometry"
        srid = value.get("srid", 4326) if isinstance(value, dict) else 4326
        noun = "feature" if count == 1 else "features"
        return f"{count} {noun} ({kinds}), EPSG:{srid}"
    if isinstance(value, dict) and "value" in value and "unit" in value:
        return f"{value['value']:g} {value['unit']}" if isinstance(value["value"], int | float) else _text(value)
    if isinstance(value, dict) and "bbox" in value:
        return ", ".join(f"{v:g}" for v in value["bbox"]) + f" (EPSG:{value.get('srid', 4326)})"
    if isinstance(value, dict) and "srid" in value:
        return f"EPSG:{value['srid']}"
    if isinstance(value, dict) and ("artifact" in value or "encoding" in value or "href" in value):
        size = value.get("size")
        return f"file ({value.get('media_type') or 'bytes'}{f', {size} bytes' if size else ''})"
    text = _text(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _map_layer(role: str, p: ParamSpec | None, name: str, value: Any) -> dict[str, Any] | None:
    """A GeoJSON layer of the map preview, or None when the value is no features."""
    if not isinstance(value, dict) or "srid" not in value or "type" not in value:
        return None
    if p is not None and p.type not in _FEATURES:
        return None
    srid = int(value.get("srid") or 4326)
    doc = {k: v for k, v in value.items() if k not in ("srid", "fields")}
    layer: dict[str, Any] = {
        "role": role, "name": name, "title": (p.title if p else "") or name, "srid": srid,
        "count": _feature_count(value), "geojson": None, "note": "",
    }
    if srid not in MAP_SRIDS:
        layer["note"] = f"EPSG:{srid} is not drawn on the map (lon/lat and Web Mercator are)"
        return layer
    size = len(orjson.dumps(doc))
    if size > MAP_MAX_BYTES:
        layer["note"] = f"too large to preview ({size // 1024} KiB); download it instead"
        return layer
    layer["geojson"] = doc
    return layer


@dataclass(frozen=True)
class Download:
    label: str
    href: str
    media_type: str


def job_detail(
    result: ExecutionResult,
    *,
    spec: ProcessSpec | None,
    ledger: RunLedger,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    output_href: Any,
    artifact_href: Any,
) -> dict[str, Any]:
    """The job page's context: status, inputs, outputs with downloads, map layers, tiers,
    timings and cost. ``output_href(name, fmt)`` and ``artifact_href(id)`` make links."""
    layers = []
    input_rows = []
    for name, value in inputs.items():
        p = spec.input(name) if spec else None
        input_rows.append({"name": name, "title": (p.title if p else "") or name, "summary": value_summary(p, value)})
        layer = _map_layer("input", p, name, value)
        if layer:
            layers.append(layer)
    output_rows = []
    names = list(outputs) + [n for n in result.output_links if n not in outputs]
    for name in names:
        p = spec.output(name) if spec else None
        value = outputs.get(name)
        downloads: list[Download] = []
        features = (p is not None and p.type in _FEATURES) or _map_layer("output", None, name, value) is not None
        if features and value is not None:
            downloads += [
                Download("GeoJSON", output_href(name, "geojson"), GEOJSON),
                Download("Esri JSON", output_href(name, "esrijson"), ESRI_JSON),
            ]
            layer = _map_layer("output", p, name, value)
            if layer:
                layers.append(layer)
        elif isinstance(value, dict) and value.get("encoding") == "base64":
            downloads.append(Download("File", output_href(name, "raw"), str(value.get("media_type") or "")))
        link = result.output_links.get(name)
        if link and link.get("artifact"):
            downloads.append(
                Download(f"Stored artifact ({link.get('size', '?')} bytes)", artifact_href(link["artifact"]),
                         str(link.get("media_type") or ""))
            )
        output_rows.append({
            "name": name,
            "title": (p.title if p else "") or name,
            "summary": value_summary(p, value if value is not None else link),
            "downloads": downloads,
        })
    tiers = [
        {"tier": t.get("tier", ""), "outcome": t.get("outcome", ""), "reason": t.get("reason", ""), "at": t.get("at", "")}
        for t in ledger.tiers_tried
    ]
    timings = {
        "created": _when(result.created),
        "started": _when(result.started),
        "finished": _when(result.finished),
        "waited": seconds_text(_duration(result.created, result.started)),
        "ran": seconds_text(_duration(result.started, result.finished)),
    }
    return {
        "job": job_row(result),
        "status": job_status(result),
        "result": result,
        "ledger": ledger,
        "inputs": input_rows,
        "outputs": output_rows,
        "layers": layers,
        "map": [
            {"role": layer["role"], "name": layer["name"], "title": layer["title"], "srid": layer["srid"],
             "geojson": layer["geojson"]}
            for layer in layers if layer["geojson"] is not None
        ],
        "tiers": tiers,
        "timings": timings,
        "cancellable": not result.is_finished and not result.dismissed,
        "dismissable": not result.dismissed,
    }


# --- downloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileBody:
    """A download: bytes, media type and file name."""

    data: bytes
    media_type: str
    filename: str


def _filename(result: ExecutionResult, name: str, ext: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return f"{result.process_id}-{str(result.run_id)[:8]}-{safe}.{ext}"


def output_file(
    result: ExecutionResult, spec: ProcessSpec | None, name: str, values: Mapping[str, Any], fmt: str
) -> FileBody:
    """One output of a finished run as a file: GeoJSON, Esri JSON (a FeatureSet) or its bytes."""
    if name not in values:
        raise errors.NoSuchOutput(f"job {result.run_id} has no output {name!r}")
    value = values[name]
    p = spec.output(name) if spec else None
    if fmt in ("geojson", "esrijson"):
        if not isinstance(value, dict) or "type" not in value:
            raise errors.InvalidParameterValue(f"output {name!r} is not features; download it as it is")
        if fmt == "esrijson":
            doc = featureset_out(value, RenderOptions(return_z=True), param=p)
            return FileBody(orjson.dumps(doc), ESRI_JSON, _filename(result, name, "json"))
        srid = int(value.get("srid") or 4326)
        geo = {k: v for k, v in value.items() if k not in ("srid", "fields")}
        if srid != 4326:  # RFC 7946 has no crs member; GeoJSON 2008's is what readers still take
            geo["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}
        return FileBody(orjson.dumps(geo), GEOJSON, _filename(result, name, "geojson"))
    if fmt == "raw":
        if isinstance(value, dict) and value.get("encoding") == "base64":
            media = str(value.get("media_type") or "application/octet-stream")
            return FileBody(base64.b64decode(value["value"]), media, _filename(result, name, "bin"))
        if isinstance(value, str):
            return FileBody(value.encode(), "text/plain; charset=utf-8", _filename(result, name, "txt"))
        return FileBody(orjson.dumps(value), "application/json", _filename(result, name, "json"))
    raise errors.InvalidParameterValue("format is geojson, esrijson or raw")


def process_rows(specs: Sequence[ProcessSpec]) -> list[dict[str, Any]]:
    return [
        {"id": s.id, "title": s.title, "description": s.description, "version": s.version,
         "keywords": ", ".join(s.keywords), "modes": ", ".join(m.value for m in s.modes)}
        for s in sorted(specs, key=lambda s: s.id)
    ]


def input_rows(spec: ProcessSpec) -> list[dict[str, Any]]:
    """The inputs table of a process page."""
    rows = []
    for p in spec.inputs:
        kind = p.type.value.replace("_", " ") + (" (several)" if p.multi else "")
        constraint = []
        if p.choices:
            constraint.append("one of " + ", ".join(str(c) for c in p.choices))
        if p.minimum is not None:
            constraint.append(f"≥ {p.minimum:g}")
        if p.maximum is not None:
            constraint.append(f"≤ {p.maximum:g}")
        if p.default is not None:
            constraint.append(f"default {_text(p.default)}")
        rows.append({
            "name": p.name, "title": p.title or p.name, "description": p.description, "type": kind,
            "required": p.required, "constraints": "; ".join(constraint),
        })
    return rows
