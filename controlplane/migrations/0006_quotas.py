"""Quotas and versioned policy: policy revisions, per-period tenant usage, per-second rate
counters, and the admission function controlplane/sql/honua_quota_admit_v1.sql."""

from pathlib import Path

import django.db.models.deletion
from django.db import migrations, models

QUOTA_ADMIT_SQL = (Path(__file__).resolve().parent.parent / "sql" / "honua_quota_admit_v1.sql").read_text()
DROP_QUOTA_ADMIT = (
    "DROP FUNCTION IF EXISTS honua_quota_admit(bigint, text, integer, integer, integer, integer,"
    " timestamptz, double precision, text, date, double precision, boolean)"
)


class Migration(migrations.Migration):

    dependencies = [
        ('controlplane', '0005_identity'),
    ]

    operations = [
        migrations.AlterField(
            model_name='tenant',
            name='policy_version',
            field=models.PositiveIntegerField(default=1, help_text='Raised by every change to the policy or to one of its overrides.'),
        ),
        migrations.AlterField(
            model_name='tenantpolicyoverride',
            name='cost_cap',
            field=models.FloatField(blank=True, help_text='Largest estimated cost (units) of one run; above it, refused.', null=True),
        ),
        migrations.AlterField(
            model_name='tenantpolicyoverride',
            name='version',
            field=models.PositiveIntegerField(default=1, help_text="The tenant's policy version of the last change."),
        ),
        migrations.CreateModel(
            name='PolicyRevision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.PositiveIntegerField()),
                ('kind', models.CharField(choices=[('tenant', 'Tenant'), ('override', 'Override')], max_length=8)),
                ('process_id', models.CharField(blank=True, help_text="The override's process.", max_length=100)),
                ('before', models.JSONField(blank=True, help_text='Empty: created.', null=True)),
                ('after', models.JSONField(blank=True, help_text='Empty: deleted.', null=True)),
                ('actor', models.CharField(blank=True, max_length=150)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='policy_revisions', to='controlplane.tenant')),
            ],
            options={
                'ordering': ['tenant', '-version'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'version'), name='policyrev_tenant_version_uniq'), models.CheckConstraint(condition=models.Q(('kind__in', ['tenant', 'override'])), name='policyrev_kind_valid'), models.CheckConstraint(condition=models.Q(models.Q(('kind', 'tenant'), ('process_id', '')), models.Q(('kind', 'override'), models.Q(('process_id', ''), _negated=True)), _connector='OR'), name='policyrev_process_matches_kind'), models.CheckConstraint(condition=models.Q(('before__isnull', False), ('after__isnull', False), _connector='OR'), name='policyrev_has_a_side')],
            },
        ),
        migrations.CreateModel(
            name='TenantRateCounter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('second', models.DateTimeField(help_text='Start of the second.')),
                ('runs', models.PositiveIntegerField(default=0)),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='rate_counters', to='controlplane.tenant')),
            ],
            options={
                'ordering': ['tenant', '-second'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'second'), name='ratecounter_tenant_second_uniq')],
            },
        ),
        migrations.CreateModel(
            name='TenantUsage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('period', models.CharField(choices=[('day', 'Day'), ('month', 'Month')], max_length=5)),
                ('period_start', models.DateField(help_text='First day of the period (UTC).')),
                ('cost_units', models.FloatField(default=0)),
                ('runs', models.PositiveIntegerField(default=0)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='usage', to='controlplane.tenant')),
            ],
            options={
                'verbose_name_plural': 'tenant usage',
                'ordering': ['tenant', '-period_start'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'period', 'period_start'), name='usage_tenant_period_uniq'), models.CheckConstraint(condition=models.Q(('period__in', ['day', 'month'])), name='usage_period_valid'), models.CheckConstraint(condition=models.Q(('cost_units__gte', 0)), name='usage_cost_nonneg')],
            },
        ),
            # After the tables it reads (the function body is checked when first called).
        migrations.RunSQL(QUOTA_ADMIT_SQL, reverse_sql=DROP_QUOTA_ADMIT),
    ]
