"""Install executors/postgis/sql/honua_hexbin_v1.sql and honua_idw_v1.sql (reversing drops
their functions)."""

from django.db import migrations

from executors.postgis.sqlfiles import install


class Migration(migrations.Migration):
    dependencies = [("executors", "0009_honua_analytics1")]
    operations = [
        install(
            "hexbin",
            1,
            drops=[
                "hexbin(bytea[], integer, double precision, boolean, double precision[], integer)",
                "_laea_for(geometry)",
            ],
        ),
        install(
            "idw",
            1,
            drops=[
                "idw(bytea[], integer, double precision, double precision, double precision,"
                " integer, double precision[], double precision[], integer)",
            ],
        ),
    ]
