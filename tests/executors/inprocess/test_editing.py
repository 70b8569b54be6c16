"""Cut, reshape and trim/extend."""

from __future__ import annotations

import pytest
import shapely

from tests.executors.inprocess.support import GEOD, fc, geometry, geoms, meters, props, run

SQUARE = shapely.box(0, 0, 10, 10)


def test_cut_square_into_two_halves_of_known_area():
    result = run(
        "cut",
        {
            "features": fc([SQUARE], srid=3857),
            "cutter": fc([shapely.LineString([(4, -1), (4, 11)])], srid=3857),
        },
    )
    areas = sorted(g.area for g in geoms(result))
    assert areas == pytest.approx([40.0, 60.0])
    assert all(p == {"i": 0, "input_id": 0} for p in props(result))


def test_cut_by_two_lines_keeps_holes_and_ignores_dangles():
    holed = SQUARE.difference(shapely.box(6, 6, 8, 8))
    cutters = [shapely.LineString([(5, -1), (5, 11)]), shapely.LineString([(-1, 2), (3, 2)])]
    result = run("cut", {"features": fc([holed], srid=3857), "cutter": fc(cutters, srid=3857)})
    areas = sorted(g.area for g in geoms(result))
    # the second cutter does not cross the square: only the first one splits it
    assert areas == pytest.approx([46.0, 50.0])


def test_cut_lines_at_crossings_and_leaves_others_alone():
    lines = [shapely.LineString([(0, 0), (10, 0)]), shapely.LineString([(0, 5), (3, 5)])]
    result = run(
        "cut",
        {
            "features": fc(lines, srid=3857),
            "cutter": fc([shapely.LineString([(4, -1), (4, 1)])], srid=3857),
        },
    )
    pieces = sorted(
        (p["input_id"], round(g.length, 9))
        for p, g in zip(props(result), geoms(result), strict=True)
    )
    assert pieces == [(0, 4.0), (0, 6.0), (1, 3.0)]


def test_cut_lonlat_polygon_halves_have_equal_geodesic_area():
    cell = shapely.box(0, 0, 1, 1)
    result = run(
        "cut", {"features": fc([cell]), "cutter": fc([shapely.LineString([(0.5, -1), (0.5, 2)])])}
    )
    a, b = (abs(GEOD.geometry_area_perimeter(g)[0]) for g in geoms(result))
    assert a == pytest.approx(b, rel=1e-9)


def test_reshape_polygon_inside_cuts_off_the_smaller_side():
    line = shapely.LineString([(3, -2), (3, 12)])
    result = run(
        "reshape", {"features": fc([SQUARE], srid=3857), "reshaping_line": geometry(line, 3857)}
    )
    assert geoms(result)[0].normalize().equals_exact(shapely.box(3, 0, 10, 10).normalize(), 1e-9)


def test_reshape_polygon_outside_adds_the_enclosed_area():
    bulge = shapely.LineString([(2, 9), (2, 14), (8, 14), (8, 9)])
    result = run(
        "reshape", {"features": fc([SQUARE], srid=3857), "reshaping_line": geometry(bulge, 3857)}
    )
    grown = geoms(result)[0]
    assert grown.area == pytest.approx(100 + 6 * 4)
    assert grown.contains(shapely.Point(5, 13))


def test_reshape_line_between_two_crossings():
    line = shapely.LineString([(0, 0), (10, 0)])
    reshaper = shapely.LineString([(3, 1), (3, -1), (3, -3), (7, -3), (7, 1)])
    result = run(
        "reshape", {"features": fc([line], srid=3857), "reshaping_line": geometry(reshaper, 3857)}
    )
    assert geoms(result)[0].equals(
        shapely.LineString([(0, 0), (3, 0), (3, -3), (7, -3), (7, 0), (10, 0)])
    )


def test_reshape_line_crossed_once_replaces_the_shorter_end():
    line = shapely.LineString([(0, 0), (10, 0)])
    reshaper = shapely.LineString([(8, -1), (8, 5)])
    result = run(
        "reshape", {"features": fc([line], srid=3857), "reshaping_line": geometry(reshaper, 3857)}
    )
    assert geoms(result)[0].equals(shapely.LineString([(0, 0), (8, 0), (8, 5)]))


def test_reshape_leaves_untouched_features_alone():
    far = shapely.box(50, 50, 51, 51)
    result = run(
        "reshape",
        {
            "features": fc([far], srid=3857),
            "reshaping_line": geometry(shapely.LineString([(0, 0), (1, 1)]), 3857),
        },
    )
    assert geoms(result)[0].equals(far)


def test_trim_dangles_and_extend_short_lines_to_boundaries():
    lines = [
        shapely.LineString([(0, 0), (0, 9)]),  # stops 1 m short of the top line
        shapely.LineString([(-5, 10), (5, 10)]),  # the top line
        shapely.LineString([(3, 8), (3, 11.5)]),  # runs 1.5 m past the top line
        shapely.LineString([(-4, 0), (-4, 5)]),  # 5 m short: beyond reach
    ]
    result = run("trim_extend", {"features": fc(lines, srid=3857), "distance": meters(2)})
    out = geoms(result)
    assert out[0].equals(shapely.LineString([(0, 0), (0, 10)]))
    assert out[1].equals(lines[1])
    assert out[2].equals(shapely.LineString([(3, 8), (3, 10)]))
    assert out[3].equals(lines[3])


def test_trim_extend_modes_and_boundary_input():
    boundary = fc([shapely.box(-10, -10, 10, 10)], srid=3857)
    lines = fc(
        [shapely.LineString([(0, 0), (0, 9.5)]), shapely.LineString([(5, 0), (5, 10.5)])], srid=3857
    )
    extended = geoms(
        run(
            "trim_extend",
            {"features": lines, "boundary": boundary, "distance": meters(1), "mode": "extend"},
        )
    )
    assert extended[0].equals(shapely.LineString([(0, 0), (0, 10)]))
    assert extended[1].equals(shapely.LineString([(5, 0), (5, 10.5)]))
    trimmed = geoms(
        run(
            "trim_extend",
            {"features": lines, "boundary": boundary, "distance": meters(1), "mode": "trim"},
        )
    )
    assert trimmed[0].equals(shapely.LineString([(0, 0), (0, 9.5)]))
    assert trimmed[1].equals(shapely.LineString([(5, 0), (5, 10)]))


def test_extend_lonlat_line_by_ground_distance():
    # a line ending 50 m south of an east-west boundary at 45N
    end_lat = 45.0 - 50.0 / 111132.0
    lines = [
        shapely.LineString([(5, 44.99), (5, end_lat)]),
        shapely.LineString([(4.99, 45), (5.01, 45)]),
    ]
    short = geoms(run("trim_extend", {"features": fc(lines), "distance": meters(40)}))
    assert short[0].coords[-1][1] == pytest.approx(end_lat, abs=1e-12)
    reached = geoms(run("trim_extend", {"features": fc(lines), "distance": meters(60)}))
    # the boundary edge is taken as a geodesic (straight in the local frame): 5 cm north
    # of the 45N parallel halfway between its vertices 1.6 km apart
    assert reached[0].coords[-1][1] == pytest.approx(45.0 + 0.049 / 111132.0, abs=1e-7)
