"""Install executors/postgis/sql/honua_buffer_v2.sql (reversing reinstalls version 1)."""

from django.db import migrations

from executors.postgis.sqlfiles import install


class Migration(migrations.Migration):
    dependencies = [("executors", "0006_honua_voronoi_v2")]
    operations = [install("buffer", 2, drops=[], previous=1)]
