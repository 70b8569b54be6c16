"""Install executors/postgis/sql/honua_buffer_v1.sql."""

from django.db import migrations

from executors.postgis.sqlfiles import install


class Migration(migrations.Migration):
    dependencies = [("executors", "0002_honua_common_v1")]
    operations = [
        install(
            "buffer",
            1,
            drops=[
                "buffer(bytea[], integer, double precision, integer, text, text, double precision, boolean, text)",
            ],
        )
    ]
