"""Install executors/postgis/sql/honua_common_v1.sql."""

from django.db import migrations

from executors.postgis.sqlfiles import install


class Migration(migrations.Migration):
    dependencies = [("executors", "0001_schema_role")]
    operations = [
        install(
            "common",
            1,
            drops=[
                "_is_geographic(integer)",
                "_local_srid(double precision, double precision)",
                "_scale_at(geometry, integer)",
                "_wrap_dateline(geometry, geometry)",
                "_aeqd_for(geometry)",
            ],
        )
    ]
