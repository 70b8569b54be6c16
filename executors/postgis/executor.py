"""The postgis tier: allow-listed SQL functions of schema ``honua_gp`` on this database.

Each call runs in its own transaction (a savepoint inside an outer one) on the calling
thread's Django connection, as the least-privilege role with a statement timeout, and is
always rolled back: the functions only read. Geometries travel as a bytea[] of WKB and
come back as WKB; the role switch, the timeout and the call are pipelined into one round
trip.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, ClassVar

import numpy as np
import psycopg
import shapely
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from psycopg import errors as pg_errors
from psycopg import sql

from executors.base import (
    Cancelled,
    CapacityRejected,
    DeadlineExceeded,
    ExecutionContext,
    Executor,
    ExecutorError,
    InvalidInput,
    TierUnavailable,
)
from executors.geodata import Features, read_features, write_features
from executors.layers.source import LayerSource, source_geometries_sql, source_read
from executors.postgis.registry import (
    GEOMETRY_PER_INPUT,
    NEW_FEATURES,
    VALUE_PER_INPUT,
    SqlFunction,
    frame_for,
    function_for,
)
from executors.postgis.sqlfiles import SCHEMA, role_name

log = logging.getLogger("honua.executors.postgis")

_UNAVAILABLE_RECHECK_SECONDS = 30.0
_SETUP = "SELECT set_config('role', %s, true), set_config('statement_timeout', %s, true)"
_AVAILABLE = """
SELECT to_regnamespace(%s) IS NOT NULL
   AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis')
   AND CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)
            THEN pg_has_role(current_user, %s, 'MEMBER') ELSE false END
"""
# XX000 messages of PostGIS/GEOS/PROJ that are about the input, not the server.
_INPUT_HINTS = (
    "invalid",
    "parse error",
    "topologyexception",
    "transform",
    "geos",
    "lwgeom",
    "wkb",
    "srid",
    "coordinate",
    "latitude",
    "longitude",
    "ring",
)


class PostGISExecutor(Executor):
    """Runs allow-listed ``honua_gp`` functions; cancels the backend when a run is cancelled."""

    tier: ClassVar[str] = "postgis"
    needs_database: ClassVar[bool] = True
    isolated: ClassVar[bool] = False
    supports_cancel: ClassVar[bool] = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, psycopg.Connection[Any]] = {}
        self._available: bool | None = None
        self._checked_at = 0.0

    # -- capabilities ------------------------------------------------------------------

    def is_available(self) -> bool:
        """Schema, PostGIS and role present (checked once; a negative answer is rechecked)."""
        if self._available or (
            self._available is False
            and time.monotonic() - self._checked_at < _UNAVAILABLE_RECHECK_SECONDS
        ):
            return bool(self._available)
        ok = False
        if connection.vendor == "postgresql":
            role = role_name()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(_AVAILABLE, [SCHEMA, role, role])
                    ok = bool(cursor.fetchone()[0])
            except DatabaseError:
                log.warning("postgis tier availability check failed", exc_info=True)
        self._available, self._checked_at = ok, time.monotonic()
        return ok

    def reset_availability(self) -> None:
        """Forget the cached availability (after migrations changed the schema)."""
        self._available = None

    def supports(self, handler: str) -> bool:
        return function_for(handler) is not None

    # -- execution ---------------------------------------------------------------------

    def execute(
        self, handler: str, inputs: dict[str, Any], ctx: ExecutionContext
    ) -> dict[str, Any]:
        fn = function_for(handler)
        if fn is None:
            raise TierUnavailable(f"the postgis tier has no function for '{handler}'")
        ctx.check_cancelled()
        value = inputs.get(fn.features_input)
        if value is None:
            raise InvalidInput(f"missing input '{fn.features_input}'")
        if isinstance(value, dict) and isinstance(value.get("source"), dict):
            return self._execute_layer(fn, handler, inputs, LayerSource.from_json(value["source"]), ctx)
        source = read_features(value, name=fn.features_input)
        if not np.isfinite(shapely.get_coordinates(source.geometries)).all():
            raise InvalidInput(f"{fn.features_input}: coordinates must be finite numbers")
        frame = frame_for(ctx.process_srid or source.srid)
        out_srid = ctx.out_srid or source.srid
        args = fn.build(inputs, frame)
        extra = () if fn.extra_args is None else fn.extra_args(inputs, source, ctx.limits)

        reproject_input = frame.srid != source.srid
        if fn.output == VALUE_PER_INPUT and out_srid == source.srid:
            geometry_out = "none"  # the input geometries are returned as they came
        elif out_srid != frame.srid:
            geometry_out = "transform"
        else:
            geometry_out = "as_is"
        params: list[Any] = [out_srid] if geometry_out == "transform" else []
        if reproject_input:
            params += [source.srid, frame.srid]
        params += [shapely.to_wkb(source.geometries).tolist(), frame.srid, *args, *extra]
        sql = fn.statement(reproject_input=reproject_input, geometry_out=geometry_out)

        rows = self._run(sql, params, ctx, handler)
        ctx.check_cancelled()
        if fn.output == NEW_FEATURES:
            return {"result": _new_features(fn, inputs, rows, out_srid)}
        dissolved = fn.dissolve_arg is not None and bool(args[fn.dissolve_arg])
        return {"result": _result(fn, source, rows, out_srid, geometry_out, dissolved)}

    def _execute_layer(
        self, fn: SqlFunction, handler: str, inputs: dict[str, Any], layer: LayerSource, ctx: ExecutionContext
    ) -> dict[str, Any]:
        """The function over a layer of this database: its geometries go from the table into
        the call inside one statement (never through Python); the features' attributes are
        read afterwards, in one more query, only when the output carries them."""
        if layer.storage != "postgis":
            raise TierUnavailable(f"layer {layer.layer!r} ({layer.label}) is not in this database")
        frame = frame_for(ctx.process_srid or layer.srid)
        out_srid = ctx.out_srid or layer.srid
        args = fn.build(inputs, frame)
        dissolved = fn.dissolve_arg is not None and bool(args[fn.dissolve_arg])
        if fn.output != GEOMETRY_PER_INPUT and out_srid == layer.srid:
            geometry_out = "none"
        elif out_srid != frame.srid:
            geometry_out = "transform"
        else:
            geometry_out = "as_is"
        inner, inner_params = source_geometries_sql(layer)
        reproject = frame.srid != layer.srid
        geoms = "ST_Transform(s.geom, %s::integer)" if reproject else "s.geom"
        array = (
            sql.SQL("ARRAY(SELECT ST_AsBinary(" + geoms + ") FROM (")
            + inner
            + sql.SQL(") AS s ORDER BY s.ordinal)")
        )
        head, tail = fn.layer_statement(geometry_out=geometry_out)
        statement = sql.SQL(head) + array + sql.SQL(tail)
        params: list[Any] = [out_srid] if geometry_out == "transform" else []
        if reproject:
            params.append(frame.srid)
        params += [*inner_params, frame.srid, *args]
        connection.ensure_connection()
        text = statement.as_string(connection.connection)
        rows = self._run(text, params, ctx, handler)
        ctx.check_cancelled()
        if dissolved:
            source = Features(np.empty(0, dtype=object), [], [], out_srid)
        else:
            source = source_read(layer)
            if len(source) < max((r[0] for r in rows), default=0):
                raise ExecutorError(f"layer {layer.layer!r} changed while the run read it", code="layer-changed")
        return {"result": _result(fn, source, rows, out_srid, geometry_out, dissolved)}

    def _statement_timeout(self, ctx: ExecutionContext) -> tuple[int, bool]:
        """Milliseconds, and whether the run's deadline (not capacity) sets them."""
        timeout = int(settings.HONUA.get("POSTGIS_STATEMENT_TIMEOUT_MS") or 30000)
        override = ctx.limits.get("postgis_statement_timeout_ms")
        if override:
            timeout = min(timeout, int(override))
        if ctx.deadline is not None:
            remaining = int((ctx.deadline - time.monotonic()) * 1000)
            if remaining <= 0:
                raise DeadlineExceeded("the run exceeded its maximum runtime")
            if remaining < timeout:
                return max(1, remaining), True
        return max(1, timeout), False

    def _run(
        self, sql: str, params: list[Any], ctx: ExecutionContext, handler: str
    ) -> list[tuple[Any, ...]]:
        timeout, by_deadline = self._statement_timeout(ctx)
        try:
            with transaction.atomic():
                connection.ensure_connection()
                raw = connection.connection
                with self._lock:
                    self._running[ctx.run_id] = raw
                try:
                    ctx.check_cancelled()
                    with psycopg.Cursor(raw) as cur:
                        with raw.pipeline():
                            cur.execute(_SETUP, [role_name(), str(timeout)])
                            cur.execute(sql, params, binary=True)
                        rows = cur.fetchall()
                finally:
                    with self._lock:
                        self._running.pop(ctx.run_id, None)
                # Read-only work: always roll back, which also ends SET LOCAL ROLE inside a
                # caller's transaction (a savepoint rollback undoes it).
                transaction.set_rollback(True)
        except psycopg.Error as exc:
            raise self._translate(exc, ctx, handler, timeout, by_deadline) from exc
        return rows

    def _translate(
        self,
        exc: psycopg.Error,
        ctx: ExecutionContext,
        handler: str,
        timeout: int,
        by_deadline: bool,
    ) -> ExecutorError:
        state = exc.sqlstate or ""
        text = (exc.diag.message_primary or str(exc)).strip()
        if isinstance(exc, pg_errors.QueryCanceled):
            if ctx.cancel_event.is_set() or ctx.is_cancelled():
                return Cancelled("the run was cancelled")
            if by_deadline:
                return DeadlineExceeded("the run exceeded its maximum runtime")
            return CapacityRejected(f"the postgis tier hit its statement timeout ({timeout} ms)")
        if isinstance(exc, pg_errors.UndefinedFunction | pg_errors.InvalidSchemaName):
            self._available = None
            return TierUnavailable(
                f"the postgis function for '{handler}' is not installed ({text})"
            )
        if isinstance(exc, pg_errors.InsufficientPrivilege) or (
            state == "22023" and text.startswith("role ")
        ):
            return TierUnavailable(f"the postgis tier cannot run as its role ({text})")
        if state == "22023" and text.startswith("unknown spatial reference"):
            # pyproj knew it (the frame was built): this database's spatial_ref_sys lacks it.
            return TierUnavailable(f"this database does not know the spatial reference ({text})")
        if isinstance(exc, psycopg.OperationalError) and not state.startswith("5"):
            return TierUnavailable(f"the database connection failed ({text})")
        if state.startswith(("53", "57")):  # out of resources, operator intervention
            return CapacityRejected(f"the database refused the work ({text})")
        if state.startswith("22") or (
            state == "XX000" and any(h in text.lower() for h in _INPUT_HINTS)
        ):
            return InvalidInput(
                f"{handler}: {text}", code="geometry-operation-failed" if state == "XX000" else None
            )
        return ExecutorError(
            f"{handler}: the database failed ({state}: {text})", code="postgis-error"
        )

    def cancel_callback(self, ctx: ExecutionContext) -> None:
        """Cancel the statement of ``ctx``'s run (called from the lease keeper's thread)."""
        with self._lock:  # held so the connection cannot move on to another statement
            raw = self._running.get(ctx.run_id)
            if raw is None:
                return
            try:
                if hasattr(raw, "cancel_safe"):  # psycopg >= 3.2: bounded, non-blocking
                    raw.cancel_safe(timeout=5.0)
                else:
                    raw.cancel()
            except (psycopg.Error, OSError):
                log.warning(
                    "cancelling the postgis backend failed",
                    exc_info=True,
                    extra={"run_id": ctx.run_id},
                )


# -- rows -> internal encoding -------------------------------------------------------------


def _geometries(wkb: list[bytes | None]) -> np.ndarray:
    return np.asarray(shapely.from_wkb(np.array(wkb, dtype=object)), dtype=object)


def _result(
    fn: SqlFunction,
    source: Features,
    rows: list[tuple[Any, ...]],
    out_srid: int,
    geometry_out: str,
    dissolved: bool,
) -> dict[str, Any]:
    n = len(source)
    if dissolved:
        geoms = _geometries([r[1] for r in rows])
        return write_features(Features(geoms, [{} for _ in rows], [None] * len(rows), out_srid))
    if fn.output == GEOMETRY_PER_INPUT:
        placed = np.full(n, None, dtype=object)
        if rows:
            placed[np.fromiter((r[0] - 1 for r in rows), dtype=np.intp, count=len(rows))] = (
                _geometries([r[1] for r in rows])
            )
        return write_features(source.replace(placed, srid=out_srid))
    values: list[Any] = [fn.value_default] * n
    for ordinal, _, value in rows:
        if value is not None:
            values[ordinal - 1] = value
    out = source.with_field(fn.value_property or "value", values, fn.value_type or "string")
    if geometry_out != "none":
        placed = np.full(n, None, dtype=object)
        if rows:
            placed[np.fromiter((r[0] - 1 for r in rows), dtype=np.intp, count=len(rows))] = (
                _geometries([r[1] for r in rows])
            )
        out = out.replace(placed, srid=out_srid)
    return write_features(out)


def _new_features(
    fn: SqlFunction, inputs: dict[str, Any], rows: list[tuple[Any, ...]], srid: int
) -> dict[str, Any]:
    """Rows (ordinal, geom, *columns), in ordinal order -> new features with the columns as
    typed properties."""
    written = [(k + 2, c) for k, c in enumerate(fn.columns) if c in fn.columns_for(inputs)]
    props = [{c.prop: row[k] for k, c in written} for row in rows]
    fields = [{"name": c.prop, "type": c.type} for _, c in written] or None
    geoms = _geometries([r[1] for r in rows]) if rows else np.empty(0, dtype=object)
    return write_features(Features(geoms, props, [None] * len(rows), srid, fields))
