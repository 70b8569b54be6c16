"""Tenant administrators: the bounds an operator's override sets for their edits.

Every existing override was made by an operator (tenant administrators had no admin access
before), so its current values become its bounds."""

from django.db import migrations, models

BOUND_FIELDS = ("enabled", "tier_order", "resource_class", "cost_cap")


def bounds_from_values(apps, schema_editor):
    override_model = apps.get_model("controlplane", "TenantPolicyOverride")
    for override in override_model.objects.filter(operator_bounds__isnull=True):
        override.operator_bounds = {name: getattr(override, name) for name in BOUND_FIELDS}
        override.save(update_fields=["operator_bounds"])


class Migration(migrations.Migration):

    dependencies = [
        ('controlplane', '0006_quotas'),
    ]

    operations = [
        migrations.AddField(
            model_name='tenantpolicyoverride',
            name='operator_bounds',
            field=models.JSONField(blank=True, editable=False, help_text="What the operator last set (enabled, tier_order, resource_class, cost_cap): the bounds of tenant administrators' edits. Empty: made by a tenant administrator.", null=True),
        ),
        migrations.RunPython(bounds_from_values, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='tenantpolicyoverride',
            constraint=models.CheckConstraint(condition=models.Q(('operator_bounds__isnull', True), ('operator_bounds__has_keys', ['enabled', 'tier_order', 'resource_class', 'cost_cap']), _connector='OR'), name='override_bounds_complete'),
        ),
        migrations.AddConstraint(
            model_name='tenantpolicyoverride',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('operator_bounds__enabled', False), _negated=True), ('enabled', False), _connector='OR'), name='override_operator_off_stays_off'),
        ),
    ]
