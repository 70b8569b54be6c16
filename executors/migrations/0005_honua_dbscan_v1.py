"""Install executors/postgis/sql/honua_dbscan_v1.sql."""

from django.db import migrations

from executors.postgis.sqlfiles import install


class Migration(migrations.Migration):
    dependencies = [("executors", "0004_honua_voronoi_v1")]
    operations = [
        install(
            "dbscan",
            1,
            drops=[
                "dbscan(bytea[], integer, double precision, integer, text)",
            ],
        )
    ]
