"""The execution role is least-privilege; the SQL migrations install and reverse cleanly."""

from __future__ import annotations

import math

import psycopg
import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from executors.postgis.sqlfiles import SCHEMA, role_name
from tests.executors.postgis.conftest import run_as_role

FUNCTIONS = {
    "buffer",
    "voronoi",
    "dbscan",
    "delaunay",
    "kmeans",
    "cluster_within",
    "_is_geographic",
    "_local_srid",
    "_scale_at",
    "_wrap_dateline",
    "_aeqd_for",
    "hexbin",
    "idw",
    "_laea_for",
}
ANALYTICS2 = {"hexbin", "idw", "_laea_for"}  # 0010_honua_analytics2


def _scalar(sql: str, params: list | None = None):
    with connection.cursor() as cur:
        cur.execute(sql, params or [])
        return cur.fetchone()[0]


def _functions() -> set[str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT p.proname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE n.nspname = %s",
            [SCHEMA],
        )
        return {r[0] for r in cur.fetchall()}


@pytest.mark.django_db
def test_the_role_is_nologin_without_attributes_and_granted_to_the_app_user():
    role = role_name()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication "
            "FROM pg_roles WHERE rolname = %s",
            [role],
        )
        assert cur.fetchone() == (False, False, False, False, False, False)
        cur.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [role])
        assert cur.fetchone()[0] is True
        cur.execute(
            "SELECT has_schema_privilege(%s, %s, 'USAGE'), has_schema_privilege(%s, %s, 'CREATE'),"
            " has_schema_privilege(%s, 'public', 'CREATE')",
            [role, SCHEMA, role, SCHEMA, role],
        )
        assert cur.fetchone() == (True, False, False)
        cur.execute(
            "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = %s", [role]
        )
        assert cur.fetchone()[0] == 0
        cur.execute(
            "SELECT bool_and(has_function_privilege(%s, p.oid, 'EXECUTE')) FROM pg_proc AS p"
            " WHERE p.pronamespace = %s::regnamespace",
            [role, SCHEMA],
        )
        assert cur.fetchone()[0] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM controlplane_processrun LIMIT 1",
        "SELECT count(*) FROM auth_user",
        "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())",
        "UPDATE controlplane_processdefinition SET enabled = false",
        "DELETE FROM django_q_task",
        f"CREATE TABLE {SCHEMA}.intruder (id int)",
        "CREATE TABLE public.intruder (id int)",
        f"CREATE FUNCTION {SCHEMA}.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ],
)
def test_the_role_cannot_read_or_write_tables_or_create_objects(sql):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        run_as_role(sql)


@pytest.mark.django_db
def test_the_role_can_execute_the_functions_and_then_is_reset():
    rows = run_as_role(
        "SELECT current_user, count(*) FROM honua_gp.dbscan(ARRAY[]::bytea[], 3857, 1, 1)"
    )
    assert rows == [(role_name(), 0)]
    assert _scalar("SELECT current_user") == connection.settings_dict["USER"]


@pytest.mark.django_db
def test_functions_pin_their_search_path_and_skip_jit():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT p.proname, p.proconfig FROM pg_proc AS p WHERE p.pronamespace = %s::regnamespace"
            " AND p.proname IN ('buffer', 'voronoi', 'dbscan', 'delaunay', 'kmeans', 'cluster_within',"
            " 'hexbin', 'idw')",
            [SCHEMA],
        )
        for _, config in cur.fetchall():
            assert "jit=off" in config
            [path] = [c for c in config if c.startswith("search_path=")]
            assert path.startswith("search_path=pg_catalog, ") and path.endswith(", pg_temp")


@pytest.mark.django_db
def test_migrations_reverse_to_nothing_and_forward_again():
    executor = MigrationExecutor(connection)
    leaf = executor.loader.graph.leaf_nodes("executors")
    assert _functions() == FUNCTIONS
    with transaction.atomic():
        executor.migrate([("executors", None)])
        assert _functions() == set()
        assert _scalar("SELECT to_regnamespace(%s) IS NULL", [SCHEMA]) is True
        # The role is cluster-wide (other databases use it): it stays.
        assert _scalar("SELECT count(*) FROM pg_roles WHERE rolname = %s", [role_name()]) == 1
        executor.loader.build_graph()
        executor.migrate(leaf)
        assert _functions() == FUNCTIONS
        rows = run_as_role(
            "SELECT ordinal FROM honua_gp.buffer(ARRAY[ST_AsBinary('POINT(0 0)'::geometry)], 3857, 1.0)"
        )
        assert rows == [(1,)]


@pytest.mark.django_db
def test_reversing_one_function_removes_only_it():
    executor = MigrationExecutor(connection)
    with transaction.atomic():
        executor.migrate([("executors", "0004_honua_voronoi_v1")])
        assert _functions() == FUNCTIONS - {"dbscan", "delaunay", "kmeans", "cluster_within"} - ANALYTICS2
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("executors"))
        assert _functions() == FUNCTIONS


@pytest.mark.django_db
def test_analytics2_reverses_to_exactly_its_functions_and_forward_again():
    executor = MigrationExecutor(connection)
    leaf = executor.loader.graph.leaf_nodes("executors")
    with transaction.atomic():
        executor.migrate([("executors", "0009_honua_analytics1")])
        assert _functions() == FUNCTIONS - ANALYTICS2
        executor.loader.build_graph()
        executor.migrate(leaf)
        assert _functions() == FUNCTIONS
        rows = run_as_role(
            "SELECT point_count FROM honua_gp.hexbin(ARRAY[ST_AsBinary('POINT(1 1)'::geometry)], 3857, 10.0)"
        )
        assert rows == [(1,)]


@pytest.mark.django_db
def test_version_2_functions_reverse_to_version_1_and_forward_again():
    """0006-0008 install voronoi, buffer and dbscan version 2; reversing them reinstalls
    version 1 (a 50 m buffer of a Web Mercator point in Soho: 50 plane units in version 1,
    50 m on the ground, ~80 units, in version 2)."""
    executor = MigrationExecutor(connection)
    leaf = executor.loader.graph.leaf_nodes("executors")
    point = "ST_AsBinary(ST_Transform(ST_SetSRID(ST_Point(-0.1367, 51.5133), 4326), 3857))"
    sql = (
        "SELECT ST_XMax(geom) - ST_X(ST_Centroid(geom))"
        f" FROM honua_gp.buffer(ARRAY[{point}], 3857, 50.0)"
    )
    ground = 50.0 / math.cos(math.radians(51.5133))  # 80.3 plane units
    assert run_as_role(sql)[0][0] == pytest.approx(ground, rel=1e-2)
    with transaction.atomic():
        executor.migrate([("executors", "0005_honua_dbscan_v1")])
        assert _functions() == FUNCTIONS - {"delaunay", "kmeans", "cluster_within"} - ANALYTICS2
        assert run_as_role(sql)[0][0] == pytest.approx(50.0, rel=1e-9)
        executor.loader.build_graph()
        executor.migrate(leaf)
        assert run_as_role(sql)[0][0] == pytest.approx(ground, rel=1e-2)


@pytest.mark.django_db
def test_analytics1_reverses_to_the_functions_before_it_and_forward_again():
    """0009 installs delaunay, kmeans and cluster_within; reversing it drops just them."""
    executor = MigrationExecutor(connection)
    leaf = executor.loader.graph.leaf_nodes("executors")
    with transaction.atomic():
        executor.migrate([("executors", "0008_honua_dbscan_v2")])
        assert _functions() == FUNCTIONS - {"delaunay", "kmeans", "cluster_within"} - ANALYTICS2
        executor.loader.build_graph()
        executor.migrate(leaf)
        assert _functions() == FUNCTIONS
        rows = run_as_role(
            "SELECT cluster_id FROM honua_gp.cluster_within("
            "ARRAY[ST_AsBinary('POINT(0 0)'::geometry), ST_AsBinary('POINT(5 0)'::geometry)], 3857, 1.0, 'planar')"
        )
        assert rows == [(0,), (1,)]
