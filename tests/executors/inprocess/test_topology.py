"""Line merge, polygonize, make valid, validate."""

from __future__ import annotations

import pytest
import shapely

from tests.executors.inprocess.support import fc, geoms, props, run

BOWTIE = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])


def test_line_merge_joins_end_to_end_lines():
    lines = [
        shapely.LineString([(0, 0), (1, 0)]),
        shapely.LineString([(2, 0), (1, 0)]),
        shapely.LineString([(2, 0), (3, 1)]),
        shapely.LineString([(10, 10), (11, 11)]),
    ]
    result = run("line_merge", {"features": fc(lines, srid=3857)})
    lengths = sorted(round(g.length, 9) for g in geoms(result))
    assert lengths == sorted([round(2 + 2**0.5, 9), round(2**0.5, 9)])
    # directed: the second line runs against both neighbours, nothing joins
    directed = run("line_merge", {"features": fc(lines, srid=3857), "directed": True})
    assert len(geoms(directed)) == 4
    chain = [shapely.LineString([(0, 0), (1, 0)]), shapely.LineString([(1, 0), (2, 0)])]
    assert len(geoms(run("line_merge", {"features": fc(chain, srid=3857), "directed": True}))) == 1


def test_line_merge_by_dissolve_field():
    lines = [
        shapely.LineString([(0, 0), (1, 0)]),
        shapely.LineString([(1, 0), (2, 0)]),
        shapely.LineString([(2, 0), (3, 0)]),
    ]
    result = run(
        "line_merge",
        {
            "features": fc(lines, srid=3857, props=[{"r": "a"}, {"r": "a"}, {"r": "b"}]),
            "dissolve_field": "r",
        },
    )
    merged = {p["r"]: g.length for p, g in zip(props(result), geoms(result), strict=True)}
    assert merged == {"a": 2.0, "b": 1.0}


def test_polygonize_builds_faces_from_crossing_lines():
    lines = [
        shapely.LineString([(0, 0), (4, 0), (4, 4), (0, 4), (0, 0)]),
        shapely.LineString([(1, -1), (1, 5)]),  # crosses the square: noded into two faces
    ]
    result = run("polygonize", {"features": fc(lines, srid=3857)})
    assert sorted(g.area for g in geoms(result)) == pytest.approx([4.0, 12.0])


def test_make_valid_repairs_a_bowtie_without_losing_area():
    result = run("make_valid", {"features": fc([BOWTIE, shapely.box(0, 0, 1, 1)], srid=3857)})
    fixed, untouched = geoms(result)
    assert fixed.is_valid and fixed.area == pytest.approx(2.0)
    assert untouched.equals(shapely.box(0, 0, 1, 1))
    linework = geoms(
        run("make_valid", {"features": fc([BOWTIE], srid=3857), "method": "linework"})
    )[0]
    assert linework.is_valid and linework.area == pytest.approx(2.0)


def test_validate_reports_validity_and_reason():
    result = run("validate", {"features": fc([BOWTIE, shapely.box(0, 0, 1, 1), None])})
    rows = props(result)
    assert rows[0]["is_valid"] is False and rows[0]["reason"].startswith("Self-intersection[1 1]")
    assert rows[1] == {"i": 1, "is_valid": True, "reason": "Valid Geometry"}
    assert rows[2]["is_valid"] is None
    assert geoms(result)[0].equals(BOWTIE)
