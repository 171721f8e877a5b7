"""The portal's ingestion pages: sources (with an upload page each), normalization rules, pipeline runs.

Sources are saved through `source_create` / `source_update`; a refusal of the service (a pull
URL the outbound guard blocks, a missing pull format...) comes back as errors on the form,
with nothing saved. Uploads go through `batch_receive` + `batch_dispatch`, like the API.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from apps.compute import services
from apps.compute.choices import NormalizationKindChoices, SourceKindChoices
from apps.compute.ingest.parsers import MalformedPayload, PayloadTooLarge
from apps.compute.models import NormalizationRule, PipelineRun, Source
from apps.host.choices import ContractStatusChoices
from apps.host.models import ContractVersion
from apps.kernel.admin import ReadOnlyTenantScopedAdmin, TenantScopedAdmin
from apps.kernel.context import get_tenant_context
from apps.kernel.errors import DomainError
from apps.kernel.roles import EDITOR_ROLES, PORTAL_ROLES
from apps.storage.admin import (
    CappedPaginator,
    IngestStyles,
    batch_link,
    batch_status_badge,
    show_duration,
    show_moment,
)
from apps.storage.choices import FINAL_BATCH_STATUSES, BatchStatusChoices
from apps.storage.models import IngestionBatch

logger = logging.getLogger(__name__)

# Refusals of a service, kept on the request between the rolled-back first pass and the second one.
_REFUSAL = "_aurum_compute_refusal"


class _ServiceRefused(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@contextmanager
def _through_service() -> Iterator[None]:
    try:
        yield
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise _ServiceRefused({k: [str(m) for m in v] for k, v in exc.message_dict.items()}) from exc
        raise _ServiceRefused({NON_FIELD_ERRORS: [str(m) for m in exc.messages]}) from exc
    except DomainError as exc:
        raise _ServiceRefused({NON_FIELD_ERRORS: [exc.detail]}) from exc


class _ServiceFormMixin:
    """save_model calls a service inside `_through_service()`; a refusal rolls the first pass back
    (the admin's changeform_view is atomic) and the form is shown again with the service's errors."""

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        except _ServiceRefused as refused:
            setattr(request, _REFUSAL, refused.errors)
            return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]
        errors = getattr(request, _REFUSAL, None)
        if errors is None or request.method != "POST":
            return form

        class Refused(form):  # type: ignore[valid-type, misc]
            def clean(self) -> Any:
                cleaned = super().clean()
                for name, texts in errors.items():
                    self.add_error(name if name in self.fields else None, texts)
                return cleaned

        Refused.__name__ = form.__name__
        return Refused


def _tenant_of_request(request: HttpRequest) -> Any:
    context = get_tenant_context(request)
    return context.tenant if context is not None else None


# --- sources ------------------------------------------------------------------------------------------
@admin.register(Source)
class SourceAdmin(IngestStyles, _ServiceFormMixin, TenantScopedAdmin):
    view_roles = PORTAL_ROLES
    add_roles = EDITOR_ROLES
    change_roles = EDITOR_ROLES
    delete_roles = frozenset()  # batches and Golden Data Points point at their source: deactivate instead
    upload_roles = EDITOR_ROLES
    list_display = ("key", "name", "contract", "kind", "priority", "active", "last_batch", "upload_link")
    list_display_links = ("key", "name")
    list_filter = ("kind", "active", ("contract", admin.RelatedOnlyFieldListFilter))
    search_fields = ("key", "name", "description")
    list_select_related = ("contract",)
    change_form_template = "admin/compute/source/change_form.html"
    fieldsets = (
        (None, {"fields": ("tenant", "key", "name", "contract", "kind", "priority", "active", "description")}),
        (
            "Scheduled pull",
            {
                "fields": ("pull_url", "pull_format", "pull_every_seconds", "last_pulled_at"),
                "description": "Only for sources of the kind “Scheduled pull”: Aurum fetches the URL on this "
                "schedule. The URL must be reachable from the internet (private addresses are refused).",
                "classes": ("aurum-pull-fields",),
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Source]:
        latest = IngestionBatch.objects.filter(source=OuterRef("pk")).order_by("-created_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                _last_batch_id=Subquery(latest.values("id")[:1]),
                _last_batch_status=Subquery(latest.values("status")[:1]),
                _last_batch_at=Subquery(latest.values("created_at")[:1]),
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Source | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("last_pulled_at",)
        return ("tenant", "key", "contract", "last_pulled_at")  # a source's key and contract do not change

    def get_list_display(self, request: HttpRequest) -> Any:
        if not self._allowed(request, self.upload_roles):
            return tuple(name for name in self.list_display if name != "upload_link")
        return self.list_display

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        tenant = _tenant_of_request(request)
        if tenant is not None:
            initial.setdefault("tenant", tenant.pk)
        initial.setdefault("kind", SourceKindChoices.UPLOAD)
        return initial

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "pull_url":
            kwargs["assume_scheme"] = "https"
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name in ("tenant", "contract") and field is not None:  # picked here, not edited
            wrapper = field.widget
            wrapper.can_add_related = wrapper.can_change_related = wrapper.can_view_related = False
        return field

    # --- columns --------------------------------------------------------------------------------------
    @admin.display(description="Last batch", ordering="_last_batch_at")
    def last_batch(self, obj: Source) -> str:
        batch_id = getattr(obj, "_last_batch_id", None)
        if batch_id is None:
            return format_html('<span class="aurum-muted">{}</span>', "no batch yet")
        moment = obj._last_batch_at
        return format_html(
            '{} {} <span class="aurum-muted" title="{}">{} ago</span>',
            batch_link(batch_id),
            batch_status_badge(status=obj._last_batch_status),
            timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S"),
            timesince(moment),
        )

    @admin.display(description="")
    def upload_link(self, obj: Source) -> str:
        if not obj.active:
            return format_html('<span class="aurum-muted">{}</span>', "inactive")
        return format_html('<a href="{}">{}</a>', reverse("admin:compute_source_upload", args=[obj.pk]), "Upload…")

    # --- saving through the services -----------------------------------------------------------------
    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        attrs = {name: getattr(obj, name) for name in services.SOURCE_ATTRS}
        with _through_service():
            if change:
                services.source_update(actor=request.user, source=obj, **attrs)
                return
            created = services.source_create(
                actor=request.user, tenant=obj.tenant, contract=obj.contract, key=obj.key, **attrs
            )
        obj.pk, obj._state.adding = created.pk, False

    def response_add(self, request: HttpRequest, obj: Source, post_url_continue: str | None = None) -> Any:
        next_step = not any(key in request.POST for key in ("_addanother", "_continue", IS_POPUP_VAR))
        if next_step and obj.active and obj.kind != SourceKindChoices.PULL:
            self.message_user(request, f"Source “{obj.key}” created: upload its first records.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:compute_source_upload", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    # --- pages ----------------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [path("<path:object_id>/upload/", wrap(self.upload_view), name="compute_source_upload"),
                *super().get_urls()]  # fmt: skip

    def has_upload_permission(self, request: HttpRequest, obj: Source | None = None) -> bool:
        return self._allowed(request, self.upload_roles, obj)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: Source | None = None,
    ) -> Any:  # fmt: skip
        if obj is not None:
            version = ContractVersion.objects.active().filter(contract_id=obj.contract_id).first()
            context.update(
                may_upload=self.has_upload_permission(request, obj) and obj.active,
                upload_url=reverse("admin:compute_source_upload", args=[obj.pk]),
                batches_url=reverse("admin:storage_ingestionbatch_changelist") + f"?source__id__exact={obj.pk}",
                rules_url=reverse("admin:compute_normalizationrule_changelist")
                + (f"?contract_version__id__exact={version.pk}" if version else ""),
                recent_batches=_recent_batches(obj),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def upload_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A file of records for this source: parsed, spooled and processed like an API delivery."""
        source = self.get_object(request, unquote(object_id))
        if source is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_upload_permission(request, source):
            raise PermissionDenied
        version = ContractVersion.objects.active().filter(contract_id=source.contract_id).first()
        blocked = ""
        if not source.active:
            blocked = "This source is inactive: activate it (edit the source) before uploading."
        elif version is None:
            blocked = f"Contract “{source.contract.key}” has no active version to check records against."
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            response = self._receive(request, source, form)
            if response is not None:
                return response
        return TemplateResponse(
            request,
            "admin/compute/source/upload.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"Upload records to “{source.name}”",
                "source": source,
                "version": version,
                "form": form,
                "blocked": blocked,
                **_contract_guide(version),
                "max_bytes": min(settings.AURUM_MAX_REQUEST_BYTES, settings.AURUM_MAX_INGEST_BYTES),
                "max_size": _size_text(min(settings.AURUM_MAX_REQUEST_BYTES, settings.AURUM_MAX_INGEST_BYTES)),
                "inline_size": _size_text(settings.AURUM_INLINE_BATCH_BYTES),
                "recent_batches": _recent_batches(source),
                "source_url": reverse("admin:compute_source_change", args=[source.pk]),
            },
        )

    def _receive(self, request: HttpRequest, source: Source, form: UploadForm) -> HttpResponse | None:
        """Receive and dispatch the upload; None (with errors on the form) when it is refused."""
        upload = form.cleaned_data["file"]
        key = form.cleaned_data["idempotency_key"]
        try:
            batch, created = services.batch_receive(
                actor=request.user, source=source, stream=upload, content_type=form.content_type,
                filename=upload.name, idempotency_key=key,
            )  # fmt: skip
        except MalformedPayload as exc:
            form.add_error(
                "file", f"{upload.name}, {exc.detail}. Nothing was received: fix the file and upload it again."
            )
            return None
        except PayloadTooLarge as exc:
            form.add_error("file", exc.detail)
            return None
        except DomainError as exc:
            if exc.slug == "idempotency-key-reused":
                existing = exc.extensions.get("batch")
                form.add_error("idempotency_key", f"{exc.detail} (It was used for batch {existing}.)")
            else:
                form.add_error(None, exc.detail)
            return None
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
            return None
        batch_url = reverse("admin:storage_ingestionbatch_change", args=[batch.pk])
        if not created:
            self.message_user(
                request,
                f"This file was already uploaded with the idempotency key “{key}” as batch {batch.pk}: "
                "nothing new was received.",
                messages.WARNING,
            )
            return HttpResponseRedirect(batch_url)
        try:
            batch = services.batch_dispatch(batch)
        except Exception as exc:  # the file is received (the batch exists): say so on its page, not with a 500
            logger.exception("Processing batch %s failed in the upload request", batch.pk)
            batch.refresh_from_db()
            self.message_user(
                request,
                f"Batch {batch.pk} ({upload.name}) was received, but processing it failed: {type(exc).__name__}: "
                f"{exc}. The batch stays {batch.get_status_display().lower()}; stalled batches are resumed by a job.",
                messages.ERROR,
            )
            return HttpResponseRedirect(batch_url)
        self.message_user(request, *_outcome(batch, upload.name))
        return HttpResponseRedirect(batch_url)


def _recent_batches(source: Source) -> list[dict[str, Any]]:
    batches = IngestionBatch.objects.filter(source=source).order_by("-created_at", "-id")[:5]
    return [{"batch": batch, "badge": batch_status_badge(batch)} for batch in batches]


def _outcome(batch: IngestionBatch, filename: str) -> tuple[str, int]:
    """The message after an upload; it starts with the batch (the admin capitalizes messages' first letter)."""
    head = f"Batch {batch.pk} ({filename})"
    if batch.status not in FINAL_BATCH_STATUSES:
        size = _size_text(batch.size_bytes)
        return f"{head} received, {size}: a worker processes it; this page refreshes until it is done.", messages.INFO
    plural = "s" if batch.received != 1 else ""
    counts = f"{batch.received} record{plural} received, {batch.accepted} accepted, {batch.rejected} rejected"
    if batch.status == BatchStatusChoices.COMPLETED:
        return f"{head}: {counts}; {batch.gdps_created} Golden Data Point version(s) created.", messages.SUCCESS
    if batch.status == BatchStatusChoices.COMPLETED_WITH_REJECTIONS:
        return f"{head}: {counts}. The rejections are listed below with their line in the file.", messages.WARNING
    if batch.status == BatchStatusChoices.REFUSED:
        return f"{head} was refused whole by the quality gate: {counts}.", messages.ERROR
    return f"{head} failed: {batch.error}", messages.ERROR


def _size_text(size: int) -> str:
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{size} bytes"


def _contract_guide(version: ContractVersion | None) -> dict[str, Any]:
    """What the upload page tells about the contract: its fields, and which need a cast rule per format."""
    if version is None:
        return {"fields": [], "rules": []}
    fields = list(version.fields.all())
    rules = list(version.normalization_rules.all())
    written = {rule.field for rule in rules}  # a cast, or a derived or default value, may give the type
    typed = [f for f in fields if f.logical_type not in ("string", "object", "array") and f.name not in written]
    temporal = [f for f in typed if f.logical_type in ("date", "timestamp")]
    return {
        "fields": fields,
        "rules": rules,
        "csv_needs_cast": [f.name for f in typed],
        "json_needs_cast": [f.name for f in temporal],
        "nothing_passes": [f.name for f in temporal if f.required],
        "rules_url": reverse("admin:compute_normalizationrule_changelist")
        + f"?contract_version__id__exact={version.pk}",
        "contract_url": reverse("admin:host_datacontract_change", args=[version.contract_id]),
    }


UPLOAD_TYPES = {
    ".json": "application/json",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/x-ndjson",
    ".csv": "text/csv",
}


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Records file",
        help_text="A JSON array of objects (.json), NDJSON: one JSON object per line (.ndjson or .jsonl), "
        "or CSV with a header row (.csv). The extension decides how the file is read.",
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(UPLOAD_TYPES)}),
    )
    idempotency_key = forms.CharField(
        max_length=255,
        required=False,
        label="Idempotency key",
        help_text="Optional. Uploading the same file again with the same key returns the first batch instead of "
        "receiving it twice; the same key with a different file is refused.",
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "e.g. tills-2026-11-01"}),
    )

    content_type = ""

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        extension = os.path.splitext(upload.name or "")[1].lower()
        if extension not in UPLOAD_TYPES:
            raise forms.ValidationError(
                f"“{upload.name}” is not a .json, .ndjson, .jsonl or .csv file: the extension says how to read it."
            )
        self.content_type = UPLOAD_TYPES[extension]
        return upload

    def clean_idempotency_key(self) -> str:
        return self.cleaned_data["idempotency_key"].strip()


# --- normalization rules -----------------------------------------------------------------------------
KIND_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    NormalizationKindChoices.RENAME: ("Move the value of another field into this one.", {"from": "Umsatz"}),
    NormalizationKindChoices.CAST: (
        "Turn text into integer, number, boolean, date or timestamp (ISO 8601 by default; locale or formats).",
        {"to": "date"},
    ),
    NormalizationKindChoices.CONVERT_UNIT: ("Convert between units of one dimension.", {"from": "g", "to": "kg"}),
    NormalizationKindChoices.TRIM: ("Strip whitespace (collapse: inner runs too).", {"collapse": True}),
    NormalizationKindChoices.CASE: ("upper, lower or title case.", {"to": "lower"}),
    NormalizationKindChoices.MAP_CODES: (
        "Replace codes by values (strict: an unmapped code is a problem).",
        {"mapping": {"N": "north", "S": "south"}, "strict": True},
    ),
    NormalizationKindChoices.DEFAULT: ("A value for a missing or null field.", {"value": 0}),
    NormalizationKindChoices.DERIVE: ("Compute the field with a safe expression.", {"expression": "revenue - returns"}),
}


class NormalizationRuleForm(forms.ModelForm):
    params = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "class": "aurum-json"}),
        help_text='A JSON object; what it holds depends on the kind (see the examples below), e.g. {"to": "date"}.',
    )

    class Meta:
        model = NormalizationRule
        fields = ("contract_version", "position", "kind", "field", "params", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "contract_version": "Only draft versions take new or changed rules.",
            "position": "Steps run in ascending position, before validation.",
        }

    def clean_params(self) -> dict[str, Any]:
        value = self.cleaned_data.get("params")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('A JSON object, e.g. {"to": "date"}.')
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        version = data.get("contract_version") or getattr(self.instance, "contract_version", None)
        if version is not None and not version.is_editable:
            raise forms.ValidationError(
                f"{version} is {version.get_status_display().lower()}: its rules are frozen. Create a new draft "
                "version of the contract to change them."
            )
        kind, field = data.get("kind"), data.get("field")
        if kind and field and "params" in data:
            for name, message in services.normalization_rule_errors(kind, field, data["params"]).items():
                self.add_error(name, message)
        return data


def _draft_versions(request: HttpRequest) -> QuerySet[ContractVersion]:
    """The draft contract versions of the request's tenant (all tenants' for a superuser without one)."""
    drafts = ContractVersion.objects.filter(status=ContractStatusChoices.DRAFT).select_related("contract")
    tenant = _tenant_of_request(request)
    if tenant is not None:
        drafts = drafts.for_tenant(tenant)
    elif not request.user.is_superuser:
        drafts = drafts.none()
    return drafts.order_by("contract__key", "-major", "-minor", "-patch")


class DraftVersionFilter(admin.SimpleListFilter):
    """Versions that have rules, plus the tenant's drafts; labelled with their status."""

    title = "contract version"
    parameter_name = "contract_version__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        versions = ContractVersion.objects.select_related("contract").order_by(
            "contract__key", "-major", "-minor", "-patch"
        )
        tenant = _tenant_of_request(request)
        if tenant is not None:
            versions = versions.for_tenant(tenant)
        elif not request.user.is_superuser:
            versions = versions.none()
        with_rules = set(model_admin.get_queryset(request).values_list("contract_version_id", flat=True).distinct())
        return [
            (str(v.pk), f"{v} ({v.get_status_display().lower()})")
            for v in versions
            if v.pk in with_rules or v.status == ContractStatusChoices.DRAFT
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(contract_version_id=int(value)) if value.isdigit() else queryset.none()


@admin.register(NormalizationRule)
class NormalizationRuleAdmin(IngestStyles, TenantScopedAdmin):
    """A contract version's normalization steps, in order; editable while the version is a draft."""

    tenant_lookup = "contract_version__tenant"
    view_roles = PORTAL_ROLES
    add_roles = EDITOR_ROLES
    change_roles = EDITOR_ROLES
    delete_roles = EDITOR_ROLES  # like the version's fields: the steward edits the draft
    form = NormalizationRuleForm
    list_display = ("contract_version", "version_status", "position", "kind", "field", "params_label", "description")
    list_display_links = ("position", "kind")
    list_filter = (DraftVersionFilter, "kind")
    list_select_related = ("contract_version__contract",)
    search_fields = ("field", "description", "contract_version__contract__key")
    ordering = ("contract_version__contract__key", "-contract_version__major", "-contract_version__minor",
                "-contract_version__patch", "position", "id")  # fmt: skip
    change_form_template = "admin/compute/normalizationrule/change_form.html"
    change_list_template = "admin/compute/normalizationrule/change_list.html"

    @admin.display(description="Version status", ordering="contract_version__status")
    def version_status(self, obj: NormalizationRule) -> str:
        version = obj.contract_version
        tone = {"draft": "info", "active": "ok", "retired": "muted", "deprecated": "muted"}.get(version.status, "warn")
        return format_html('<span class="aurum-status aurum-tone-{}">{}</span>', tone, version.get_status_display())

    @admin.display(description="Params")
    def params_label(self, obj: NormalizationRule) -> str:
        return format_html("<code>{}</code>", json.dumps(obj.params, ensure_ascii=False)) if obj.params else "—"

    def _editable(self, obj: NormalizationRule | None) -> bool:
        return obj is None or obj.contract_version.is_editable

    def has_change_permission(self, request: HttpRequest, obj: NormalizationRule | None = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: NormalizationRule | None = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: NormalizationRule | None = None) -> tuple[str, ...]:
        return ("contract_version",) if obj is not None else ()

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "contract_version" and field is not None:  # a version is picked here, not edited
            wrapper = field.widget
            wrapper.can_add_related = wrapper.can_change_related = wrapper.can_view_related = False
        return field

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "contract_version" and field is not None:
            field.queryset = _draft_versions(request)  # after the base class, which scopes to the tenant only
            field.label_from_instance = lambda version: f"{version} (draft)"
        return field

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        version = initial.get("contract_version") or request.GET.get("contract_version__id__exact")
        if version and str(version).isdigit():
            initial["contract_version"] = int(version)
            last = NormalizationRule.objects.filter(contract_version_id=int(version)).aggregate(last=Max("position"))
            initial.setdefault("position", 0 if last["last"] is None else last["last"] + 1)
        return initial

    def _kind_examples(self) -> list[dict[str, str]]:
        return [
            {"kind": kind, "label": NormalizationKindChoices(kind).label, "summary": summary,
             "example": json.dumps(example, ensure_ascii=False)}
            for kind, (summary, example) in KIND_EXAMPLES.items()
        ]  # fmt: skip

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: NormalizationRule | None = None,
    ) -> Any:  # fmt: skip
        context["kind_examples"] = self._kind_examples()
        context["has_drafts"] = bool(add and _draft_versions(request).exists())
        if obj is not None and not obj.contract_version.is_editable:
            context["frozen_note"] = (
                f"{obj.contract_version} is {obj.contract_version.get_status_display().lower()}: its rules are "
                "frozen. Create a new draft version of the contract to change them."
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        version_id = request.GET.get("contract_version__id__exact", "")
        version = None
        if version_id.isdigit():
            version = _draft_versions(request).filter(pk=int(version_id)).first()  # a draft of the tenant, or None
        extra = {"kind_examples": self._kind_examples(), "chosen_draft": version, **(extra_context or {})}
        return super().changelist_view(request, extra)


# --- pipeline runs -----------------------------------------------------------------------------------
@admin.register(PipelineRun)
class PipelineRunAdmin(IngestStyles, ReadOnlyTenantScopedAdmin):
    """One run of the pipeline over a batch: status, timings, counts (the OpenLineage run id)."""

    show_auditlog_history_link = False
    list_display = ("run_label", "job", "batch_column", "status_label", "started", "duration", "counts_label")
    list_display_links = ("run_label",)
    list_filter = ("status", "job")
    search_fields = ("=run_id", "=batch__id")
    show_full_result_count = False
    paginator = CappedPaginator
    fields = ("run_id", "job", "batch_column", "status_label", "started", "duration", "counts_label", "error")
    readonly_fields = fields

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        return super().changelist_view(request, {"is_nav_sidebar_enabled": False, **(extra_context or {})})

    @admin.display(description="Run", ordering="started_at")
    def run_label(self, obj: PipelineRun) -> str:
        return format_html('<span title="OpenLineage run id {}">{}…</span>', obj.run_id, str(obj.run_id)[:8])

    @admin.display(description="Started", ordering="started_at")
    def started(self, obj: PipelineRun) -> str:
        return format_html('<span class="aurum-when">{}</span>', show_moment(obj.started_at))

    @admin.display(description="Batch", ordering="batch_id")
    def batch_column(self, obj: PipelineRun) -> str:
        return batch_link(obj.batch_id)

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj: PipelineRun) -> str:
        tone = {"completed": "ok", "failed": "bad"}.get(obj.status, "info")
        return format_html('<span class="aurum-status aurum-tone-{}">{}</span>', tone, obj.get_status_display())

    @admin.display(description="Duration")
    def duration(self, obj: PipelineRun) -> str:
        if obj.finished_at is None:
            return "—"
        return show_duration((obj.finished_at - obj.started_at).total_seconds())

    @admin.display(description="Counts")
    def counts_label(self, obj: PipelineRun) -> str:
        counts = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in (obj.counts or {}).items())
        return format_html('<span class="aurum-when">{}</span>', counts) if counts else "—"


from apps.compute.kpis import admin as kpi_admin  # noqa: E402,F401  (KPI pages register themselves)
