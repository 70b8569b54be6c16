"""PostGISExecutor end to end: internal encodings in and out, errors mapped to the tier
fallback contract, statement timeout, cancellation from another thread."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import psycopg
import pytest
import shapely
from django.db import connection
from pyproj import Transformer

from executors.base import (
    Cancelled,
    CapacityRejected,
    DeadlineExceeded,
    ExecutionContext,
    InvalidInput,
    TierUnavailable,
)
from executors.postgis.executor import PostGISExecutor
from executors.postgis.registry import FUNCTIONS
from executors.registry import get_executor
from tests.executors.postgis.support import GEOD, fc, geodesic_area, shape

M100 = {"value": 100, "unit": "meter"}


def ctx(**kw) -> ExecutionContext:
    return ExecutionContext(run_id=kw.pop("run_id", "run-1"), process_id="p", handler="h", **kw)


def _current_user() -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT current_user")
        return cur.fetchone()[0]


@pytest.fixture
def ex(db) -> PostGISExecutor:
    return PostGISExecutor()


@pytest.fixture
def timeout_ms(settings):
    def set_to(ms: int) -> None:
        settings.HONUA = {**settings.HONUA, "POSTGIS_STATEMENT_TIMEOUT_MS": ms}

    return set_to


def _heavy_buffer_inputs(n: int = 4000) -> dict:
    """A dissolved buffer of ``n`` points: ~0.5 s for 4,000, ~3 s for 20,000."""
    rng = np.random.default_rng(5)
    pts = shapely.points(rng.uniform(0, 20_000, (n, 2)))
    return {
        "features": fc(list(pts), srid=3857),
        "distance": {"value": 400, "unit": "meter"},
        "quad_segs": 64,
        "dissolve": True,
    }


def test_registration_flags_and_allow_list(ex):
    assert isinstance(get_executor("postgis"), PostGISExecutor)
    assert ex.tier == "postgis" and ex.needs_database and ex.supports_cancel
    assert ex.is_available()
    assert {h for h in FUNCTIONS} == {
        "buffer", "voronoi", "dbscan", "delaunay", "kmeans", "cluster_within", "hexbin", "idw"
    }
    assert ex.supports("buffer") and ex.supports("dbscan") and ex.supports("voronoi")
    assert not ex.supports("union") and not ex.supports("honua_gp.buffer; DROP SCHEMA public")
    with pytest.raises(TierUnavailable):
        ex.execute("union", {"features": fc([shapely.Point(0, 0)])}, ctx())


def test_buffer_carries_ids_properties_and_fields_and_is_round_on_the_ground(ex):
    value = fc(
        [shapely.Point(10.75, 59.91), None, shapely.Point(-70.0, -33.4)],
        fields=[{"name": "i", "type": "integer"}],
    )
    out = ex.execute("buffer", {"features": value, "distance": M100}, ctx())["result"]
    assert out["srid"] == 4326 and out["fields"] == [{"name": "i", "type": "integer"}]
    assert [f["id"] for f in out["features"]] == ["f0", "f1", "f2"]
    assert [f["properties"] for f in out["features"]] == [
        f["properties"] for f in value["features"]
    ]
    assert out["features"][1]["geometry"] is None
    circle = shape(out["features"][0])
    ring = np.asarray(circle.exterior.coords)
    _, _, dist = GEOD.inv(
        np.full(len(ring), 10.75), np.full(len(ring), 59.91), ring[:, 0], ring[:, 1]
    )
    assert np.all(np.abs(dist - 100) < 0.5)
    assert _current_user() == connection.settings_dict["USER"]  # SET LOCAL ROLE did not leak


def test_buffer_units_out_srid_and_process_srid(ex):
    value = fc([shapely.Point(10.0, 60.0)])
    feet = ex.execute(
        "buffer", {"features": value, "distance": {"value": 328.084, "unit": "foot"}}, ctx()
    )
    assert geodesic_area(shape(feet["result"]["features"][0])) == pytest.approx(
        16 * 100**2 * math.sin(math.pi / 16), rel=1e-3
    )

    out = ex.execute("buffer", {"features": value, "distance": M100}, ctx(out_srid=32632))["result"]
    assert out["srid"] == 32632
    x, y = Transformer.from_crs(4326, 32632, always_xy=True).transform(10.0, 60.0)
    assert shape(out["features"][0]).centroid.distance(shapely.Point(x, y)) < 0.01

    # In a projected working CRS the distance is planar in its unit (UTM metres here).
    out = ex.execute("buffer", {"features": value, "distance": M100}, ctx(process_srid=32632))[
        "result"
    ]
    assert out["srid"] == 4326
    forward = Transformer.from_crs(4326, 32632, always_xy=True)
    ring = np.asarray(shape(out["features"][0]).exterior.coords)
    ux, uy = forward.transform(ring[:, 0], ring[:, 1])
    assert np.allclose(np.hypot(ux - x, uy - y), 100.0, atol=1e-6)

    degrees = ex.execute(
        "buffer", {"features": value, "distance": {"value": 1, "unit": "degree"}}, ctx()
    )
    assert shape(degrees["result"]["features"][0]).bounds == pytest.approx((9, 59, 11, 61))
    with pytest.raises(InvalidInput, match="degrees"):
        ex.execute(
            "buffer",
            {
                "features": fc([shapely.Point(0, 0)], srid=3857),
                "distance": {"value": 1, "unit": "degree"},
            },
            ctx(),
        )


def test_buffer_dissolve_gives_one_feature(ex):
    value = fc([shapely.Point(0, 0), shapely.Point(5, 0)], srid=3857)
    out = ex.execute(
        "buffer",
        {"features": value, "distance": {"value": 4, "unit": "meter"}, "dissolve": True},
        ctx(),
    )["result"]
    assert len(out["features"]) == 1 and out["features"][0]["properties"] == {}
    assert shape(out["features"][0]).geom_type == "Polygon"


def test_voronoi_cells_carry_their_points_properties(ex):
    pts = [shapely.Point(x, y) for x, y in [(0, 0), (10, 0), (0, 10), (10, 10)]]
    out = ex.execute(
        "voronoi",
        {"features": fc(pts, srid=3857), "extent": {"bbox": [-5, -5, 15, 15], "srid": 3857}},
        ctx(),
    )["result"]
    cells = [shape(f) for f in out["features"]]
    assert [f["properties"]["i"] for f in out["features"]] == [0, 1, 2, 3]
    assert all(
        c.contains(p) and c.area == pytest.approx(100) for c, p in zip(cells, pts, strict=True)
    )
    default = ex.execute("voronoi", {"features": fc(pts, srid=3857)}, ctx())[
        "result"
    ]  # bbox + 10 %
    assert shapely.union_all([shape(f) for f in default["features"]]).bounds == pytest.approx(
        (-1, -1, 11, 11)
    )


def test_voronoi_extent_in_another_crs_is_reprojected(ex):
    pts = [shapely.Point(10.1, 60.1), shapely.Point(10.3, 60.1)]
    fwd = Transformer.from_crs(4326, 3857, always_xy=True)
    x0, y0 = fwd.transform(10.0, 60.0)
    x1, y1 = fwd.transform(10.4, 60.2)
    out = ex.execute(
        "voronoi", {"features": fc(pts), "extent": {"bbox": [x0, y0, x1, y1], "srid": 3857}}, ctx()
    )["result"]
    bounds = shapely.union_all([shape(f) for f in out["features"]]).bounds
    assert bounds == pytest.approx((10.0, 60.0, 10.4, 60.2), abs=1e-6)


def test_dbscan_adds_cluster_ids_and_keeps_the_inputs(ex):
    xy = [(0, 0), (1, 0), (0, 1), (500, 500), (100, 100), (101, 100), (100, 101), None]
    geoms = [None if p is None else shapely.Point(p) for p in xy]
    value = fc(geoms, srid=3857, fields=[{"name": "i", "type": "integer"}])
    out = ex.execute(
        "dbscan",
        {"features": value, "eps": {"value": 1.5, "unit": "meter"}, "min_points": 3},
        ctx(),
    )["result"]
    assert [f["properties"]["cluster_id"] for f in out["features"]] == [0, 0, 0, -1, 1, 1, 1, -1]
    assert out["features"][3]["geometry"] == value["features"][3]["geometry"]
    assert out["fields"][-1] == {"name": "cluster_id", "type": "integer"}
    assert "cluster_id" not in value["features"][0]["properties"]  # inputs untouched

    moved = ex.execute(
        "dbscan",
        {"features": value, "eps": {"value": 1.5, "unit": "meter"}, "min_points": 3},
        ctx(out_srid=4326),
    )["result"]
    assert moved["srid"] == 4326 and shape(moved["features"][3]).x == pytest.approx(
        0.0044915764, rel=1e-6
    )


def test_missing_function_is_tier_unavailable(ex):
    with connection.cursor() as cur:
        cur.execute(
            "DROP FUNCTION honua_gp.dbscan(bytea[], integer, double precision, integer, text)"
        )
    with pytest.raises(TierUnavailable, match="not installed"):
        ex.execute(
            "dbscan", {"features": fc([shapely.Point(0, 0)]), "eps": M100, "min_points": 2}, ctx()
        )
    assert _current_user() == connection.settings_dict["USER"]


def test_missing_schema_makes_the_tier_unavailable(ex):
    with connection.cursor() as cur:
        cur.execute("ALTER SCHEMA honua_gp RENAME TO honua_gp_gone")
    assert not ex.is_available()
    with pytest.raises(TierUnavailable):
        ex.execute("buffer", {"features": fc([shapely.Point(0, 0)]), "distance": M100}, ctx())


def test_statement_timeout_is_capacity_rejected_and_the_connection_recovers(ex, timeout_ms):
    timeout_ms(20)
    started = time.monotonic()
    with pytest.raises(CapacityRejected, match="statement timeout"):
        ex.execute("buffer", _heavy_buffer_inputs(), ctx())
    assert time.monotonic() - started < 5
    assert _current_user() == connection.settings_dict["USER"]
    with connection.cursor() as cur:
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone()[0] == "0"
    timeout_ms(30000)
    out = ex.execute(
        "buffer", {"features": fc([shapely.Point(0, 0)], srid=3857), "distance": M100}, ctx()
    )
    assert len(out["result"]["features"]) == 1


def test_the_run_deadline_bounds_the_statement(ex):
    with pytest.raises(DeadlineExceeded):
        ex.execute("buffer", _heavy_buffer_inputs(), ctx(deadline=time.monotonic() + 0.02))
    with pytest.raises(DeadlineExceeded):
        ex.execute("buffer", _heavy_buffer_inputs(10), ctx(deadline=time.monotonic() - 1))


def test_invalid_input_is_reported_as_such(ex):
    with pytest.raises(InvalidInput, match="transform|Invalid coordinate"):
        ex.execute("buffer", {"features": fc([shapely.Point(10, 95)]), "distance": M100}, ctx())
    with pytest.raises(InvalidInput, match="cap_style"):
        ex.execute(
            "buffer",
            {"features": fc([shapely.Point(0, 0)]), "distance": M100, "cap_style": "blunt"},
            ctx(),
        )
    with pytest.raises(InvalidInput, match="EPSG:999999"):
        ex.execute(
            "buffer", {"features": fc([shapely.Point(0, 0)], srid=999999), "distance": M100}, ctx()
        )
    with pytest.raises(InvalidInput):
        ex.execute(
            "buffer",
            {"features": {"type": "FeatureCollection", "features": "nope"}, "distance": M100},
            ctx(),
        )


def test_cancel_from_another_thread_stops_the_backend_within_a_second(ex):
    run = ctx(run_id="run-cancel")
    inputs = _heavy_buffer_inputs(20_000)
    timings: dict[str, float] = {}

    def cancel_soon() -> None:
        time.sleep(0.5)
        run.cancel_event.set()  # what the lease keeper does before calling the callback
        timings["cancelled"] = time.monotonic()
        ex.cancel_callback(run)

    helper = threading.Thread(target=cancel_soon)
    started = time.monotonic()
    helper.start()
    with pytest.raises(Cancelled) as raised:
        ex.execute("buffer", inputs, run)
    stopped = time.monotonic()
    assert isinstance(
        raised.value.__cause__, psycopg.errors.QueryCanceled
    )  # the backend was stopped
    helper.join()
    assert stopped - started > 0.4, "the statement must still have been running"
    assert stopped - timings["cancelled"] < 1.0
    assert _current_user() == connection.settings_dict["USER"]
    ex.cancel_callback(run)  # after the run: a no-op


def test_a_run_cancelled_before_it_starts_never_reaches_the_database(ex):
    run = ctx()
    run.cancel_event.set()
    with pytest.raises(Cancelled):
        ex.execute("buffer", {"features": fc([shapely.Point(0, 0)]), "distance": M100}, run)
