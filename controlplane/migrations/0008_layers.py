"""Catalog layers (Layer) and schema honua_data for hosted layers."""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from executors.postgis.sqlfiles import role_name

HOSTED_SCHEMA = "honua_data"


def data_schema() -> migrations.RunSQL:
    """Schema honua_data (hosted layers' tables): the postgis tier role reads its tables."""
    role = role_name()
    forward = f"""
CREATE SCHEMA IF NOT EXISTS {HOSTED_SCHEMA};
REVOKE ALL ON SCHEMA {HOSTED_SCHEMA} FROM PUBLIC;
COMMENT ON SCHEMA {HOSTED_SCHEMA} IS 'Honua hosted layers (ingested files, published results)';
GRANT USAGE ON SCHEMA {HOSTED_SCHEMA} TO "{role}";
GRANT SELECT ON ALL TABLES IN SCHEMA {HOSTED_SCHEMA} TO "{role}";
ALTER DEFAULT PRIVILEGES IN SCHEMA {HOSTED_SCHEMA} GRANT SELECT ON TABLES TO "{role}";
"""
    # The hosted tables belong to the layer rows this migration's reversal drops.
    reverse = f"""
ALTER DEFAULT PRIVILEGES IN SCHEMA {HOSTED_SCHEMA} REVOKE SELECT ON TABLES FROM "{role}";
DROP SCHEMA IF EXISTS {HOSTED_SCHEMA} CASCADE;
"""
    return migrations.RunSQL(forward, reverse_sql=reverse)


class Migration(migrations.Migration):

    dependencies = [
        ('controlplane', '0007_admin_bounds'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('executors', '0001_schema_role'),
    ]

    operations = [
        data_schema(),
        migrations.CreateModel(
            name='Layer',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('collection_id', models.CharField(max_length=64)),
                ('title', models.CharField(max_length=200)),
                ('description', models.TextField(blank=True)),
                ('kind', models.CharField(choices=[('table', 'table (registered by an operator)'), ('hosted', 'hosted table (honua_data)'), ('file', 'file (read through GDAL)')], max_length=8)),
                ('schema_name', models.CharField(blank=True, max_length=63)),
                ('table_name', models.CharField(blank=True, max_length=63)),
                ('geometry_column', models.CharField(blank=True, max_length=63)),
                ('id_column', models.CharField(blank=True, max_length=63)),
                ('format', models.CharField(blank=True, help_text='GDAL driver of a file layer.', max_length=40)),
                ('sublayer', models.CharField(blank=True, max_length=255)),
                ('open_options', models.JSONField(blank=True, default=dict)),
                ('srid', models.PositiveIntegerField()),
                ('geometry_type', models.CharField(max_length=20)),
                ('fields', models.JSONField(blank=True, default=list, help_text='[{"name", "type", "column"}]')),
                ('feature_count', models.PositiveBigIntegerField(default=0)),
                ('extent', models.JSONField(blank=True, help_text='[minx, miny, maxx, maxy] in EPSG:4326', null=True)),
                ('source_name', models.CharField(blank=True, help_text='The file name it came from.', max_length=255)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('artifact', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='layers', to='controlplane.artifact')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='layers', to='controlplane.processrun')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='layers', to='controlplane.tenant')),
            ],
            options={
                'ordering': ['tenant', 'collection_id'],
                'indexes': [models.Index(condition=models.Q(('expires_at__isnull', False)), fields=['expires_at'], name='layer_expires_idx')],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'collection_id'), name='layer_tenant_collection_uniq'), models.CheckConstraint(condition=models.Q(('collection_id__regex', '^[A-Za-z][A-Za-z0-9_.-]{0,63}$')), name='layer_collection_id_valid'), models.CheckConstraint(condition=models.Q(('kind__in', ['table', 'hosted', 'file'])), name='layer_kind_valid'), models.CheckConstraint(condition=models.Q(models.Q(('artifact__isnull', False), ('kind', 'file')), models.Q(('kind__in', ['table', 'hosted']), models.Q(('schema_name', ''), _negated=True), models.Q(('table_name', ''), _negated=True), models.Q(('geometry_column', ''), _negated=True), models.Q(('id_column', ''), _negated=True)), _connector='OR'), name='layer_storage_complete'), models.CheckConstraint(condition=models.Q(models.Q(('kind', 'hosted'), _negated=True), ('schema_name', 'honua_data'), _connector='OR'), name='layer_hosted_schema'), models.CheckConstraint(condition=models.Q(('srid__gt', 0)), name='layer_srid_pos')],
            },
        ),
    ]
