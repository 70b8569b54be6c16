"""Install executors/postgis/sql/honua_delaunay_v1.sql, honua_kmeans_v1.sql and
honua_cluster_within_v1.sql (reversing drops them)."""

from django.db import migrations

from executors.postgis.sqlfiles import install


class Migration(migrations.Migration):
    dependencies = [("executors", "0008_honua_dbscan_v2")]
    operations = [
        install("delaunay", 1, drops=["delaunay(bytea[], integer, double precision, boolean)"]),
        install("kmeans", 1, drops=["kmeans(bytea[], integer, integer, text)"]),
        install(
            "cluster_within",
            1,
            drops=["cluster_within(bytea[], integer, double precision, text)"],
        ),
    ]
