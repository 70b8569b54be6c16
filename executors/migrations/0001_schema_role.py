"""Schema honua_gp and the least-privilege role the postgis tier executes as."""

from django.db import migrations

from executors.postgis.sqlfiles import create_schema_and_role


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [create_schema_and_role()]
