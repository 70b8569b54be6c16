"""The layer catalog in the admin: list, add (an allowed table, or an uploaded file) and delete
through the layer services; the technical fields are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from controlplane.admin.scope import ALL, HonuaAdmin, admin_scope
from controlplane.exceptions import HonuaError
from controlplane.models import Layer, Tenant
from controlplane.services.layers import layer_delete, layer_ingest, layer_register_table


class LayerAddForm(forms.ModelForm):
    """A new layer from a table of this database (operators) or an uploaded file."""

    table = forms.CharField(
        required=False, help_text="schema.table of this database, on the allow-list HONUA_LAYER_TABLES (operators)."
    )
    geometry_column_name = forms.CharField(required=False, label="Geometry column", help_text="Table: if several.")
    id_column_name = forms.CharField(required=False, label="Id column", help_text="Table: if no single-column key.")
    file = forms.FileField(
        required=False,
        help_text="GeoPackage, zipped Shapefile, GeoJSON, CSV (coordinates or WKT), KML or FlatGeobuf.",
    )
    storage = forms.ChoiceField(
        choices=[("hosted", "hosted table (copied into the database)"), ("file", "file (read through GDAL)")],
        initial="hosted",
        required=False,
    )
    file_srid = forms.IntegerField(required=False, min_value=1, label="SRID", help_text="When the file has none.")
    file_sublayer = forms.CharField(required=False, label="Sublayer", help_text="Of a file with several layers.")

    request: HttpRequest | None = None

    class Meta:
        model = Layer
        fields = ("tenant", "collection_id", "title", "description")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        table, upload = (data.get("table") or "").strip(), data.get("file")
        if bool(table) == bool(upload):
            raise forms.ValidationError("Give either a table or a file.")
        operator = self.request is not None and admin_scope(self.request).operator
        if table and not operator:
            raise forms.ValidationError("Only operators register tables of the database.")
        return data

    def _post_clean(self) -> None:
        """Once the form and the row's constraints are valid, the service makes the layer."""
        super()._post_clean()  # type: ignore[misc]
        if self.errors:
            return
        data = self.cleaned_data
        table, upload = (data.get("table") or "").strip(), data.get("file")
        tenant: Tenant = data["tenant"]
        actor = self.request.user if self.request is not None else None
        try:
            if table:
                self.created = layer_register_table(
                    tenant_id=tenant.pk, collection_id=data["collection_id"], title=data["title"], table=table,
                    geometry_column=data.get("geometry_column_name") or None,
                    id_column=data.get("id_column_name") or None, description=data.get("description") or "",
                    actor=actor,
                )
            else:
                assert upload is not None
                self.created = layer_ingest(
                    tenant_id=tenant.pk, collection_id=data["collection_id"], title=data["title"],
                    data=upload.read(), filename=upload.name, storage=data.get("storage") or "hosted",
                    srid=data.get("file_srid"), sublayer=data.get("file_sublayer") or None,
                    description=data.get("description") or "", actor=actor,
                )
        except HonuaError as exc:
            self.add_error(None, exc.message)


@admin.register(Layer)
class LayerAdmin(HonuaAdmin):
    list_display = ("collection_id", "title", "tenant", "kind", "geometry_type", "feature_count", "srid", "expires_at")
    list_filter = ("tenant", "kind", "geometry_type")
    search_fields = ("collection_id", "title")
    list_select_related = ("tenant",)
    technical = (
        "kind", "schema_name", "table_name", "geometry_column", "id_column", "artifact", "format", "sublayer",
        "open_options", "source_name", "srid", "geometry_type", "fields", "feature_count", "extent", "created_by",
        "created_at", "updated_at", "expires_at", "run",
    )
    tenant_admin_can = ALL
    audit_actions = frozenset({"change"})  # the services audit creates and deletes

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = type("LayerAddForm", (LayerAddForm,), {"request": request})
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            fields = ["tenant", "collection_id", "title", "description"]
            if admin_scope(request).operator:
                fields += ["table", "geometry_column_name", "id_column_name"]
            return [*fields, "file", "storage", "file_srid", "file_sublayer"]
        return ["tenant", "collection_id", "title", "description", *self.technical]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else ("tenant", "collection_id", *self.technical)

    def save_model(self, request: HttpRequest, obj: Layer, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created: Layer = form.created
        obj.pk, obj.created_at = created.pk, created.created_at
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Layer) -> None:
        layer_delete(tenant_id=obj.tenant_id, collection_id=obj.collection_id, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)
