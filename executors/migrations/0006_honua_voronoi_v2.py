"""Install executors/postgis/sql/honua_voronoi_v2.sql (reversing reinstalls version 1)."""

from django.db import migrations

from executors.postgis.sqlfiles import install


class Migration(migrations.Migration):
    dependencies = [("executors", "0005_honua_dbscan_v1")]
    operations = [install("voronoi", 2, drops=[], previous=1)]
