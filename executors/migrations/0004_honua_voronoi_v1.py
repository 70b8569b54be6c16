"""Install executors/postgis/sql/honua_voronoi_v1.sql."""

from django.db import migrations

from executors.postgis.sqlfiles import install


class Migration(migrations.Migration):
    dependencies = [("executors", "0003_honua_buffer_v1")]
    operations = [
        install(
            "voronoi",
            1,
            drops=[
                "voronoi(bytea[], integer, double precision[], double precision, double precision, double precision)",
            ],
        )
    ]
