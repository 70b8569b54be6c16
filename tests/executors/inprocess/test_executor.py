"""The in-process executor: dispatch, errors, cancellation, progress, the hot path."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shapely

from executors.base import Cancelled, DeadlineExceeded, InvalidInput, TierUnavailable
from executors.inprocess.executor import InProcessExecutor
from executors.inprocess.operations import HANDLERS
from tests.executors.inprocess.support import (
    EXECUTOR,
    context,
    fc,
    geoms,
    ground_distances,
    meters,
    run,
)

OPERATIONS = {
    "buffer", "union", "intersection", "difference", "symmetric_difference", "convex_hull",
    "envelope", "centroid", "label_points", "project", "simplify", "densify", "generalize",
    "offset_curve", "distance", "areas", "lengths", "cut", "reshape", "trim_extend", "voronoi",
    "delaunay", "line_merge", "polygonize", "minimum_bounding_circle",
    "minimum_rotated_rectangle", "make_valid", "validate",
}  # fmt: skip


def test_tier_flags_and_supported_handlers():
    assert InProcessExecutor.tier == "inprocess" and not InProcessExecutor.needs_database
    assert OPERATIONS <= set(HANDLERS)
    assert all(EXECUTOR.supports(name) for name in OPERATIONS)
    assert EXECUTOR.supports("echo") and EXECUTOR.supports("dbscan") and not EXECUTOR.supports("kriging")


def test_unknown_handler_is_tier_unavailable():
    with pytest.raises(TierUnavailable):
        EXECUTOR.execute("kriging", {}, context())


def test_invalid_geometry_input_is_invalid_input_naming_the_feature():
    value = fc([shapely.Point(0, 0), shapely.Point(1, 1)])
    value["features"][1]["geometry"] = {"type": "LineString", "coordinates": [[0, 0]]}
    with pytest.raises(InvalidInput, match="feature 1"):
        run("buffer", {"features": value, "distance": meters(10)})


def test_missing_and_bad_parameters_are_invalid_input():
    with pytest.raises(InvalidInput, match="distance"):
        run("buffer", {"features": fc([shapely.Point(0, 0)])})
    with pytest.raises(InvalidInput, match="unknown unit"):
        run("buffer", {"features": fc([shapely.Point(0, 0)]), "distance": meters(1, "furlong")})
    with pytest.raises(InvalidInput, match="cap_style"):
        run(
            "buffer",
            {"features": fc([shapely.Point(0, 0)]), "distance": meters(1), "cap_style": "pointy"},
        )


def test_geos_failure_on_invalid_polygons_becomes_invalid_input(monkeypatch):
    def boom(*args, **kwargs):
        raise shapely.errors.GEOSException("TopologyException: side location conflict")

    monkeypatch.setattr(shapely, "union", boom)
    with pytest.raises(InvalidInput, match="make_valid") as info:
        run("union", {"features": fc([shapely.box(0, 0, 1, 1)], srid=3857)})
    assert info.value.code == "geometry-operation-failed"


def test_cancellation_between_chunks_raises_cancelled():
    reported: list[int] = []
    ctx = context()

    def progress(percent, message=None):
        reported.append(percent)
        ctx.cancel_event.set()  # the user cancels as soon as the first chunk is reported

    ctx.progress = progress
    points = fc(list(shapely.points(np.column_stack([np.linspace(0, 1, 12000), np.zeros(12000)]))))
    with pytest.raises(Cancelled):
        EXECUTOR.execute("buffer", {"features": points, "distance": meters(5)}, ctx)
    assert reported == [0]


def test_cancelled_before_start_and_deadline_passed():
    cancelled = context(is_cancelled=lambda: True)
    with pytest.raises(Cancelled):
        EXECUTOR.execute("centroid", {"features": fc([shapely.Point(0, 0)])}, cancelled)
    expired = context(deadline=time.monotonic() - 1)
    with pytest.raises(DeadlineExceeded):
        EXECUTOR.execute("centroid", {"features": fc([shapely.Point(0, 0)])}, expired)


def test_progress_is_reported_for_big_inputs():
    reported: list[tuple[int, str | None]] = []
    points = fc(list(shapely.points(np.column_stack([np.linspace(0, 1, 11000), np.zeros(11000)]))))
    run("centroid", {"features": points}, progress=lambda p, m=None: reported.append((p, m)))
    assert [p for p, _ in reported] == [0, 40, 81, 90]


def test_ten_thousand_point_buffer_fast_path_is_correct():
    rng = np.random.default_rng(42)
    lonlat = np.column_stack([rng.uniform(-10, 10, 10000), rng.uniform(40, 60, 10000)])
    value = fc(list(shapely.points(lonlat)))
    result = run("buffer", {"features": value, "distance": meters(100)})
    assert len(result["features"]) == 10000
    assert result["features"][9999]["id"] == 9999 and result["features"][9999]["properties"] == {
        "i": 9999
    }
    polygons = geoms(result)
    for k in (0, 1234, 5000, 9999):
        dist = ground_distances(lonlat[k, 0], lonlat[k, 1], polygons[k].exterior)
        assert np.all(np.abs(dist - 100.0) < 0.01)
    assert all(p.geom_type == "Polygon" and len(p.exterior.coords) == 33 for p in polygons)


def test_echo_is_dispatched_unwrapped():
    assert EXECUTOR.execute("echo", {"string_input": "hi"}, context()) == {"string_input": "hi"}
