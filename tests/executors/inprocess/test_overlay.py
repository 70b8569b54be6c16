"""Union (dissolve), intersection, difference, symmetric difference."""

from __future__ import annotations

import pytest
import shapely

from tests.executors.inprocess.support import fc, geoms, props, run

A = shapely.box(0, 0, 2, 2)
B = shapely.box(1, 1, 3, 3)


def test_intersection_of_two_squares_is_the_overlap_square_with_both_attributes():
    result = run(
        "intersection",
        {
            "features": fc([A], srid=3857, props=[{"name": "a", "kind": "x"}]),
            "overlay": fc(
                [B, shapely.box(10, 10, 11, 11)], srid=3857, props=[{"name": "b"}, {"name": "c"}]
            ),
        },
    )
    (geom,) = geoms(result)
    assert geom.normalize().equals_exact(shapely.box(1, 1, 2, 2).normalize(), 1e-12)
    assert props(result) == [
        {"name": "a", "kind": "x", "overlay_name": "b", "input_id": 0, "overlay_id": 0}
    ]


def test_intersection_keeps_lower_dimension_and_drops_touching_contacts():
    line = shapely.LineString([(-1, 1), (5, 1)])
    touching = shapely.box(2, 0, 4, 2)
    result = run(
        "intersection",
        {"features": fc([line, A], srid=3857), "overlay": fc([A, touching], srid=3857)},
    )
    kinds = sorted(
        (p["input_id"], p["overlay_id"], g.geom_type)
        for p, g in zip(props(result), geoms(result), strict=True)
    )
    # the A x touching pair only shares an edge: no polygon, so it is dropped
    assert kinds == [(0, 0, "LineString"), (0, 1, "LineString"), (1, 0, "Polygon")]
    line_in_a = next(
        g
        for p, g in zip(props(result), geoms(result), strict=True)
        if p["overlay_id"] == 0 and p["input_id"] == 0
    )
    assert line_in_a.length == pytest.approx(2.0)


def test_union_dissolves_all_or_by_field():
    squares = [A, B, shapely.box(10, 0, 11, 1)]
    everything = run("union", {"features": fc(squares, srid=3857)})
    (merged,) = geoms(everything)
    assert merged.area == pytest.approx(4 + 4 - 1 + 1)
    by_kind = run(
        "union",
        {
            "features": fc(squares, srid=3857, props=[{"k": "x"}, {"k": "x"}, {"k": "y"}]),
            "dissolve_field": "k",
        },
    )
    areas = {p["k"]: g.area for p, g in zip(props(by_kind), geoms(by_kind), strict=True)}
    assert areas == pytest.approx({"x": 7.0, "y": 1.0})


def test_difference_erases_overlapping_overlay_features():
    result = run(
        "difference",
        {
            "features": fc([A, shapely.box(5, 5, 6, 6), shapely.box(20, 20, 21, 21)], srid=3857),
            "overlay": fc([B, shapely.box(0, 0, 0.5, 0.5), shapely.box(4, 4, 7, 7)], srid=3857),
        },
    )
    out = geoms(result)
    # the second square is fully erased and dropped; the third is untouched
    assert [p["i"] for p in props(result)] == [0, 2]
    assert out[0].area == pytest.approx(4 - 1 - 0.25)
    assert out[1].equals(shapely.box(20, 20, 21, 21))


def test_symmetric_difference_returns_both_sides():
    result = run(
        "symmetric_difference", {"features": fc([A], srid=3857), "overlay": fc([B], srid=3857)}
    )
    by_source = {p["source"]: g for p, g in zip(props(result), geoms(result), strict=True)}
    assert by_source["features"].area == pytest.approx(3.0)
    assert by_source["overlay"].area == pytest.approx(3.0)
    assert not by_source["features"].intersects(shapely.box(1.1, 1.1, 1.9, 1.9))
