"""The process catalog and GP services: operators only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from controlplane.admin.scope import HonuaAdmin
from controlplane.models import GPService, GPServiceTask, ProcessDefinition
from controlplane.services.gpservices import gpservice_audit_change, gpservice_snapshot
from controlplane.services.policy import policy_cache_clear


@admin.register(ProcessDefinition)
class ProcessDefinitionAdmin(HonuaAdmin):
    list_display = ("process_id", "version", "revision", "is_current", "enabled", "default_mode", "resource_class")
    list_filter = ("is_current", "enabled", "resource_class", "default_mode")
    search_fields = ("process_id", "title")
    readonly_fields = ("process_id", "version", "revision", "is_current", "spec", "spec_sha256", "title", "created_at")
    fields = (
        *readonly_fields,
        "enabled",
        "is_public",
        "tier_order",
        "resource_class",
        "default_mode",
        "limits",
    )
    tenant_field = None
    audit_exclude = ("updated_at", "spec")  # the YAML document is read-only here

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # definitions come from the YAML catalog

    def save_model(self, request: HttpRequest, obj: ProcessDefinition, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        policy_cache_clear()


def _process_choices() -> list[tuple[str, str]]:
    """Tasks an operator may add: the current, enabled catalog processes."""
    rows = (
        ProcessDefinition.objects.filter(is_current=True, enabled=True)
        .order_by("process_id")
        .values_list("process_id", "title")
    )
    return [(pid, f"{pid} ({title})") for pid, title in rows]


class GPServiceTaskForm(forms.ModelForm):
    process_id = forms.ChoiceField(label="Process", choices=())

    class Meta:
        model = GPServiceTask
        fields = ("process_id", "position")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = _process_choices()
        current = self.instance.process_id if self.instance.pk else ""
        if current and current not in {value for value, _ in choices}:
            # A task whose process was disabled or retired stays editable (and removable).
            choices.append((current, f"{current} (not enabled)"))
        field = self.fields["process_id"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices


class GPServiceTaskInline(admin.TabularInline):
    model = GPServiceTask
    form = GPServiceTaskForm
    extra = 1
    ordering = ("position", "process_id")


@admin.register(GPService)
class GPServiceAdmin(HonuaAdmin):
    """Operators group catalog processes into GP services under folders; every change is
    audited with the service and its tasks before and after."""

    list_display = ("__str__", "folder", "name", "execution_type", "enabled", "task_count", "operator_edited", "updated_at")
    list_filter = ("enabled", "execution_type", "folder", "operator_edited")
    search_fields = ("folder", "name", "description", "tasks__process_id")
    readonly_fields = ("operator_edited", "catalog_sha256", "created_at", "updated_at")
    fields = ("folder", "name", "description", "execution_type", "maximum_records", "enabled", *readonly_fields)
    inlines = [GPServiceTaskInline]
    tenant_field = None
    audit_actions = frozenset()  # gpservice_audit_change records the service with its tasks

    def get_queryset(self, request: HttpRequest) -> QuerySet[GPService]:
        return super().get_queryset(request).annotate(task_total=Count("tasks"))

    @admin.display(description="tasks", ordering="task_total")
    def task_count(self, service: GPService) -> int:
        return int(getattr(service, "task_total", 0))

    def save_model(self, request: HttpRequest, obj: GPService, form: Any, change: bool) -> None:
        before = gpservice_snapshot(GPService.objects.get(pk=obj.pk)) if change and obj.pk else None
        request._honua_gpservice_before = before  # type: ignore[attr-defined]
        obj.operator_edited = True  # sync_catalog leaves it alone from now on
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        gpservice_audit_change(
            service=form.instance,
            before=getattr(request, "_honua_gpservice_before", None),
            actor=request.user.get_username(),
        )
        policy_cache_clear()

    def delete_model(self, request: HttpRequest, obj: GPService) -> None:
        before = gpservice_snapshot(obj)
        super().delete_model(request, obj)
        gpservice_audit_change(service=obj, before=before, actor=request.user.get_username(), deleted=True)
        policy_cache_clear()
