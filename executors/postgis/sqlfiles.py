"""The versioned SQL of schema ``honua_gp`` and the migration operations that install it."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.db import migrations

SCHEMA = "honua_gp"
SQL_DIR = Path(__file__).resolve().parent / "sql"

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Functions are created with ``SET search_path FROM CURRENT``: pin it to pg_catalog, the
# schema PostGIS is installed in, and pg_temp last (no shadowing by temporary objects).
_PIN_SEARCH_PATH = """
SELECT set_config('honua.saved_search_path', current_setting('search_path'), true),
       set_config('search_path',
                  'pg_catalog, ' || (SELECT quote_ident(n.nspname)
                                     FROM pg_extension AS e
                                     JOIN pg_namespace AS n ON n.oid = e.extnamespace
                                     WHERE e.extname = 'postgis') || ', pg_temp',
                  true);
"""
_RESTORE_SEARCH_PATH = """
SELECT set_config('search_path', current_setting('honua.saved_search_path'), true);
"""


def role_name() -> str:
    """The least-privilege role the postgis tier runs as (``HONUA["POSTGIS_ROLE"]``)."""
    name = str(settings.HONUA.get("POSTGIS_ROLE") or "honua_gp_exec")
    if not _ROLE_NAME.match(name):
        raise ValueError(f"HONUA_POSTGIS_ROLE {name!r} must be a lower-case SQL identifier")
    return name


def sql_file(name: str, version: int) -> str:
    """The text of ``sql/honua_<name>_v<version>.sql``."""
    return (SQL_DIR / f"honua_{name}_v{version}.sql").read_text()


def create_schema_and_role() -> migrations.RunSQL:
    """Schema ``honua_gp`` and the NOLOGIN execution role (cluster-wide: may already exist)."""
    role = role_name()
    forward = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC;
COMMENT ON SCHEMA {SCHEMA} IS 'Honua geoprocessing functions (postgis tier); see executors/postgis/sql/';
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
    BEGIN
      CREATE ROLE "{role}" NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- created meanwhile by a migration of another database of this cluster
    END;
  END IF;
  IF NOT pg_has_role(current_user, '{role}', 'MEMBER') THEN
    EXECUTE format('GRANT %I TO %I', '{role}', current_user);
  END IF;
END
$$;
GRANT USAGE ON SCHEMA {SCHEMA} TO "{role}";
"""
    # The role is cluster-wide and may serve other databases: it is left in place.
    reverse = f"DROP SCHEMA IF EXISTS {SCHEMA} RESTRICT;"
    return migrations.RunSQL(forward, reverse_sql=reverse)


def install(
    name: str, version: int, *, drops: list[str], previous: int | None = None
) -> migrations.RunSQL:
    """Install ``honua_<name>_v<version>.sql``; reversing drops ``drops`` (function
    signatures) or, when ``previous`` is given, reinstalls that version instead."""
    role = role_name()
    grant = f'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {SCHEMA} TO "{role}";'
    forward = _PIN_SEARCH_PATH + sql_file(name, version) + _RESTORE_SEARCH_PATH + grant
    if previous is not None:
        reverse = _PIN_SEARCH_PATH + sql_file(name, previous) + _RESTORE_SEARCH_PATH + grant
    else:
        reverse = "\n".join(f"DROP FUNCTION IF EXISTS {SCHEMA}.{sig};" for sig in drops)
    return migrations.RunSQL(forward, reverse_sql=reverse)
