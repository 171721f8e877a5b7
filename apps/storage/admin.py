"""The portal's view of ingested data: batches, the append-only raw layer, Golden Data Points.

Everything here is read-only: batches, raw records and GDP versions are written by the
pipeline and the storage services only. The one write a steward makes is a GDP override
(and its removal), through `gdp_override_set` / `gdp_override_remove`, from the GDP page.

The raw layer and the GDP table grow large: lists never count more than `CappedPaginator.cap`
rows, filters are built from small tables (contracts, their fields, recent batches) instead
of DISTINCT scans over the big ones, and related rows come with select_related.
"""

from __future__ import annotations

import json
from datetime import datetime, time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import Truncator

from apps.host.models import ContractField, DataContract
from apps.kernel.admin import ReadOnlyTenantScopedAdmin
from apps.kernel.context import get_tenant_context
from apps.kernel.errors import DomainError
from apps.kernel.roles import EDITOR_ROLES
from apps.storage import selectors, services
from apps.storage.choices import FINAL_BATCH_STATUSES, BatchStatusChoices
from apps.storage.models import GoldenDataPoint, IngestionBatch, RawRecord, Rejection

REJECTIONS_PER_PAGE = 50
BATCH_TONES = {
    BatchStatusChoices.RECEIVED: "info",
    BatchStatusChoices.PROCESSING: "info",
    BatchStatusChoices.COMPLETED: "ok",
    BatchStatusChoices.COMPLETED_WITH_REJECTIONS: "warn",
    BatchStatusChoices.REFUSED: "bad",
    BatchStatusChoices.FAILED: "bad",
}


# --- shared helpers (the compute admin uses them too) ----------------------------------------------
def batch_status_badge(batch: IngestionBatch | None = None, *, status: str = "", label: str = "") -> str:
    if batch is not None:
        status, label = batch.status, batch.get_status_display()
    elif not label:
        label = BatchStatusChoices(status).label if status in BatchStatusChoices.values else status
    return format_html(
        '<span class="aurum-status aurum-tone-{}" data-status="{}">{}</span>', BATCH_TONES.get(status, "info"), status,
        label,
    )  # fmt: skip


def batch_link(batch_id: int | None, text: str | None = None) -> str:
    if batch_id is None:
        return "—"
    url = reverse("admin:storage_ingestionbatch_change", args=[batch_id])
    return format_html('<a href="{}">{}</a>', url, text or f"Batch {batch_id}")


def show_decimal(value: Decimal | None) -> str:
    """120.5000000000 → 120.5; never scientific notation."""
    if value is None:
        return "—"
    text = format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)
    return text


def show_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def show_moment(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def show_observed(moment: datetime) -> str:
    """A date when the fact is a day (midnight), else the moment."""
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d") if local.time() == time(0) else local.strftime("%Y-%m-%d %H:%M")


def show_dimensions(dimensions: dict[str, Any] | None) -> str:
    shown = [f"{name}={value}" for name, value in sorted((dimensions or {}).items()) if value is not None]
    return ", ".join(shown) or "—"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


class IngestStyles:
    """Adds the ingestion pages' stylesheet (badges, panels, counts) to a ModelAdmin's pages."""

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(css={"all": ["aurum/ingest.css"]})  # type: ignore[misc]


class CappedPaginator(Paginator):
    """Counts at most `cap` + 1 rows: a COUNT(*) over millions of rows on every page view would dominate."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if isinstance(object_list, QuerySet):
            return object_list[: self.cap + 1].count()
        return len(object_list)

    @property
    def capped(self) -> bool:
        return self.count > self.cap

    @property
    def cap_text(self) -> str:
        return f"{self.cap:,}"


def _tenant_contracts(request: HttpRequest) -> QuerySet[DataContract]:
    context = get_tenant_context(request)
    if context is None:
        return DataContract.objects.none()
    if context.tenant is None:
        return DataContract.objects.all() if context.is_superuser else DataContract.objects.none()
    return DataContract.objects.for_tenant(context.tenant)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


# --- list filters -----------------------------------------------------------------------------------
class _LinkedRowFilter(admin.SimpleListFilter):
    """A filter by one related row, set by links from other pages (batch page → its GDPs...).

    It is not offered as a list of choices (there are too many rows): it shows up only while set,
    so the page says what it is filtered by and how to clear it.
    """

    field = ""
    label = "{}"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        value = _int_or_none(self.value())
        return [(str(value), self.label.format(value))] if value is not None else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() is None:
            return queryset
        value = _int_or_none(self.value())
        return queryset.filter(**{f"{self.field}_id": value}) if value is not None else queryset.none()


class CreatedByBatchFilter(_LinkedRowFilter):
    title = "created by batch"
    parameter_name = field = "batch"
    label = "Batch {}"


class SupersededByBatchFilter(_LinkedRowFilter):
    title = "superseded by batch"
    parameter_name = field = "superseded_by_batch"
    label = "Batch {}"


class RawRecordFilter(_LinkedRowFilter):
    title = "raw record"
    parameter_name = field = "raw_record"
    label = "Raw record {}"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        # With the record's batch: GDPs are indexed by (batch, raw record), not by raw record alone.
        value = _int_or_none(self.value())
        if self.value() is None or value is None:
            return super().queryset(request, queryset)
        batch = RawRecord.objects.filter(pk=value).values("batch_id")[:1]
        return queryset.filter(batch_id=Subquery(batch), raw_record_id=value)


def parse_moment(text: str) -> datetime | None:
    """A date (its end, local time) or a date-time (local time unless it has an offset); None if neither."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is None:
                return None
            moment = datetime.combine(day, time.max)
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class BeliefFilter(admin.SimpleListFilter):
    """Bitemporal reading: the current values (default), every version, or what was believed at a moment."""

    title = "belief"
    parameter_name = "belief"
    as_of_parameter = "as_of"
    template = "admin/storage/goldendatapoint/belief_filter.html"

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        raw = params.pop(self.as_of_parameter, None)
        self.as_of_text = (raw[-1] if isinstance(raw, list) else raw or "").strip()
        super().__init__(request, params, model, model_admin)
        if self.as_of_text:
            self.used_parameters[self.as_of_parameter] = self.as_of_text
        self.as_of = parse_moment(self.as_of_text)
        if self.as_of_text and self.as_of is None:
            messages.warning(
                request, f"“{self.as_of_text}” is not a date or a date and time: showing the current values."
            )

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name, self.as_of_parameter]

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("all", "All versions"),)

    def has_output(self) -> bool:
        return True

    def mode(self) -> str:
        if self.as_of is not None:
            return "as_of"
        return "all" if self.value() == "all" else "current"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        mode = self.mode()
        if mode == "as_of":
            return queryset.as_of(self.as_of)
        return queryset if mode == "all" else queryset.current()

    def choices(self, changelist: Any) -> Any:
        mode = self.mode()
        gone = [self.parameter_name, self.as_of_parameter]
        self.hidden_params = [(k, v) for k, v in changelist.params.items() if k not in (*gone, "p")]
        self.as_of_input = timezone.localtime(self.as_of).strftime("%Y-%m-%dT%H:%M:%S") if self.as_of else ""
        self.timezone_name = timezone.get_current_timezone_name()
        yield {
            "selected": mode == "current",
            "query_string": changelist.get_query_string(remove=gone),
            "display": "Current values",
        }
        yield {
            "selected": mode == "all",
            "query_string": changelist.get_query_string({self.parameter_name: "all"}, [self.as_of_parameter]),
            "display": "All versions (history)",
        }


class ContractFilter(admin.SimpleListFilter):
    """The tenant's contracts (from the contract table: no DISTINCT over the GDPs)."""

    title = "contract"
    parameter_name = "contract"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return [(str(pk), key) for pk, key in _tenant_contracts(request).order_by("key").values_list("pk", "key")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() is None:
            return queryset
        value = _int_or_none(self.value())
        return queryset.filter(contract_id=value) if value is not None else queryset.none()


class MeasureFilter(admin.SimpleListFilter):
    """The measure fields of the tenant's contract versions (of the chosen contract, if one is)."""

    title = "measure"
    parameter_name = "measure"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        contracts = _tenant_contracts(request)
        contract = _int_or_none(request.GET.get("contract"))
        if contract is not None:
            contracts = contracts.filter(pk=contract)
        names = (
            ContractField.objects.filter(role="measure", version__contract__in=contracts)
            .order_by("name")
            .values_list("name", flat=True)
            .distinct()
        )
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(measure=self.value()) if self.value() else queryset


class OverrideFilter(admin.SimpleListFilter):
    title = "steward override"
    parameter_name = "override"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("yes", "Overrides only"), ("no", "Values from the data"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(is_override=self.value() == "yes")
        return queryset


class RecentBatchFilter(admin.SimpleListFilter):
    """The tenant's ten newest batches (and the chosen one): the raw layer is too big to list them all."""

    title = "batch"
    parameter_name = "batch"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        context = get_tenant_context(request)
        batches = IngestionBatch.objects.select_related("source")
        if context is not None and context.tenant is not None:
            batches = batches.for_tenant(context.tenant)
        elif context is None or not context.is_superuser:
            batches = batches.none()
        recent = list(batches.order_by("-created_at", "-id")[:10])
        chosen = _int_or_none(self.value())
        if chosen is not None and all(b.pk != chosen for b in recent):
            recent += list(batches.filter(pk=chosen))
        return [(str(b.pk), f"Batch {b.pk} ({b.source.key}, {b.created_at:%Y-%m-%d %H:%M})") for b in recent]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() is None:
            return queryset
        value = _int_or_none(self.value())
        return queryset.filter(batch_id=value) if value is not None else queryset.none()


# --- batches ----------------------------------------------------------------------------------------
@admin.register(IngestionBatch)
class IngestionBatchAdmin(IngestStyles, ReadOnlyTenantScopedAdmin):
    """Batches as received and processed: counts, timings, error, rejections and what they did to the GDPs."""

    show_auditlog_history_link = False  # written by the pipeline only; the outbox has its events
    list_display = (
        "batch_label", "source", "status_label", "received", "accepted", "rejected", "duplicates", "superseded",
        "gdps_created", "created",
    )  # fmt: skip
    list_display_links = ("batch_label",)
    list_filter = ("status", ("source", admin.RelatedOnlyFieldListFilter), "format")
    list_select_related = ("source",)
    search_fields = ("=id", "idempotency_key")
    search_help_text = "Batch number or idempotency key."
    show_full_result_count = False
    paginator = CappedPaginator
    change_form_template = "admin/storage/ingestionbatch/change_form.html"
    fieldsets = (
        (
            "Delivery details",
            {
                "classes": ("collapse",),
                "fields": (
                    "format", "size", "checksum", "idempotency_key", "submitted_by", "payload_path",
                    "processed_through",
                ),
            },
        ),
    )  # fmt: skip
    readonly_fields = (
        "format", "size", "checksum", "idempotency_key", "submitted_by", "payload_path", "processed_through",
    )  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[IngestionBatch]:
        return super().get_queryset(request).select_related("source", "contract_version__contract", "submitted_by")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        return super().changelist_view(request, {"is_nav_sidebar_enabled": False, **(extra_context or {})})

    @admin.display(description="Batch", ordering="id")
    def batch_label(self, obj: IngestionBatch) -> str:
        return f"Batch {obj.pk}"

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj: IngestionBatch) -> str:
        return batch_status_badge(obj)

    @admin.display(description="Duration")
    def duration(self, obj: IngestionBatch) -> str:
        return show_duration(obj.duration_seconds)

    @admin.display(description="Received at · duration", ordering="created_at")
    def created(self, obj: IngestionBatch) -> str:
        took = show_duration(obj.duration_seconds) if obj.finished_at else obj.get_status_display().lower()
        return format_html('<span class="aurum-when">{}<br>{}</span>', show_moment(obj.created_at), took)

    @admin.display(description="Size")
    def size(self, obj: IngestionBatch) -> str:
        return f"{obj.size_bytes:,} bytes"

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: IngestionBatch | None = None,
    ) -> Any:  # fmt: skip
        if obj is not None:
            context.update(self._panels(request, obj))
            context["subtitle"] = f"Batch {obj.pk} from {obj.source.name}"
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _panels(self, request: HttpRequest, batch: IngestionBatch) -> dict[str, Any]:
        gdps = reverse("admin:storage_goldendatapoint_changelist")
        rejections = Rejection.objects.filter(batch=batch)
        record_level = rejections.filter(position__isnull=False).order_by("position", "id")
        page = Paginator(record_level, REJECTIONS_PER_PAGE).get_page(request.GET.get("rejections_page"))
        return {
            "batch": batch,
            "status_badge": batch_status_badge(batch),
            "is_final": batch.status in FINAL_BATCH_STATUSES,
            "duration": show_duration(batch.duration_seconds),
            "pass_rate": None if not batch.received else round(100 * batch.accepted / batch.received, 1),
            "batch_findings": list(rejections.filter(position__isnull=True).order_by("id")),
            "rejection_summary": list(_rejection_summary(record_level)),
            "rejections_page": page,
            "rejections_page_range": list(page.paginator.get_elided_page_range(page.number, on_each_side=2)),
            "source_url": reverse("admin:compute_source_change", args=[batch.source_id]),
            "upload_url": reverse("admin:compute_source_upload", args=[batch.source_id]),
            "may_upload": self._allowed(request, EDITOR_ROLES, batch),
            "gdps_created_url": f"{gdps}?{urlencode({'batch': batch.pk, 'belief': 'all'})}",
            "gdps_superseded_url": f"{gdps}?{urlencode({'superseded_by_batch': batch.pk, 'belief': 'all'})}",
            "raw_records_url": f"{reverse('admin:storage_rawrecord_changelist')}?{urlencode({'batch': batch.pk})}",
            # Runs belong to compute; storage links to them rather than importing its models.
            "runs_url": f"{reverse('admin:compute_pipelinerun_changelist')}?{urlencode({'batch': batch.pk})}",
        }


def _rejection_summary(rejections: QuerySet[Rejection]) -> QuerySet[Any]:
    """Findings per field, rule and severity, the commonest first (one GROUP BY on the batch's rows)."""
    grouped = rejections.order_by().values("field", "rule", "severity").annotate(count=Count("id"))
    return grouped.order_by("-count", "field", "rule")[:12]


# --- the raw layer ----------------------------------------------------------------------------------
@admin.register(RawRecord)
class RawRecordAdmin(IngestStyles, ReadOnlyTenantScopedAdmin):
    """Records exactly as received. Append-only: nobody, superusers included, adds, changes or deletes here."""

    show_auditlog_history_link = False
    list_display = ("record_label", "batch_column", "position", "line", "payload_preview", "received")
    list_display_links = ("record_label",)
    list_filter = (RecentBatchFilter,)
    list_select_related = ("batch__source",)
    show_full_result_count = False
    paginator = CappedPaginator
    ordering = ("-batch_id", "position")
    change_form_template = "admin/storage/rawrecord/change_form.html"
    fields = ("batch_column", "position", "line", "received", "hash", "payload_pretty")
    readonly_fields = fields
    actions = None

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Record", ordering="id")
    def record_label(self, obj: RawRecord) -> str:
        return f"Record {obj.pk}"

    @admin.display(description="Batch", ordering="batch_id")
    def batch_column(self, obj: RawRecord) -> str:
        return batch_link(obj.batch_id, f"Batch {obj.batch_id} ({obj.batch.source.key})")

    @admin.display(description="Received at", ordering="received_at")
    def received(self, obj: RawRecord) -> str:
        return show_moment(obj.received_at)

    @admin.display(description="Payload")
    def payload_preview(self, obj: RawRecord) -> str:
        text = json.dumps(obj.payload, ensure_ascii=False, default=str)
        return format_html('<code class="aurum-payload">{}</code>', Truncator(text).chars(120))

    @admin.display(description="Payload (as received)")
    def payload_pretty(self, obj: RawRecord) -> str:
        return format_html('<pre class="aurum-json" id="raw-payload">{}</pre>', pretty_json(obj.payload))

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: RawRecord | None = None,
    ) -> Any:  # fmt: skip
        if obj is not None:
            gdps = reverse("admin:storage_goldendatapoint_changelist")
            context.update(
                rejections=list(obj.rejections.order_by("id")),
                gdps_url=f"{gdps}?{urlencode({'raw_record': obj.pk, 'belief': 'all'})}",
                gdp_count=GoldenDataPoint.objects.filter(batch_id=obj.batch_id, raw_record=obj).count(),
                append_only_note="Raw records are kept exactly as received: they are never changed, and deleted only "
                "by the retention job.",
                subtitle=f"Record #{obj.position} of batch {obj.batch_id} (line {obj.line})",
            )
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- Golden Data Points -------------------------------------------------------------------------------
class OverrideForm(forms.Form):
    value = forms.DecimalField(max_digits=30, decimal_places=10)
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the value is overridden.")
        return reason


GDP_FIELDS = (
    "contract", "contract_version", "measure", "entity_key", "dimensions_label", "observed", "value_label",
    "quality_flags_label",
)  # fmt: skip


@admin.register(GoldenDataPoint)
class GoldenDataPointAdmin(IngestStyles, ReadOnlyTenantScopedAdmin):
    """Trusted values with their lineage and history; stewards override a value (with a reason) here."""

    override_roles = EDITOR_ROLES
    show_auditlog_history_link = False  # overrides are events (gdp.overridden) and versions in the history
    list_display = (
        "entity_key", "measure", "dimensions_label", "observed", "value_label", "source", "belief_label",
        "batch_column",
    )  # fmt: skip
    list_display_links = ("entity_key",)
    list_filter = (
        BeliefFilter, ContractFilter, MeasureFilter, OverrideFilter, CreatedByBatchFilter, SupersededByBatchFilter,
        RawRecordFilter,
    )  # fmt: skip
    list_select_related = ("source",)
    search_fields = ("^entity_key",)
    search_help_text = "Entity key (or its beginning), e.g. S001."
    show_full_result_count = False
    paginator = CappedPaginator
    ordering = ("-id",)  # the newest versions first, and the primary key index answers it
    change_form_template = "admin/storage/goldendatapoint/change_form.html"
    change_list_template = "admin/storage/goldendatapoint/change_list.html"
    fieldsets = (
        (None, {"fields": GDP_FIELDS}),
        (
            "Belief",
            {"fields": ("recorded_from_label", "recorded_to_label", "superseded_by_batch_link", "source_priority")},
        ),
    )
    readonly_fields = (
        "contract", "contract_version", "measure", "entity_key", "dimensions_label", "observed", "value_label",
        "quality_flags_label", "recorded_from_label", "recorded_to_label", "superseded_by_batch_link", "source_priority",
    )  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[GoldenDataPoint]:
        return super().get_queryset(request).select_related("contract", "contract_version", "overridden_by")

    # --- columns --------------------------------------------------------------------------------------
    @admin.display(description="Dimensions")
    def dimensions_label(self, obj: GoldenDataPoint) -> str:
        return show_dimensions(obj.dimensions)

    @admin.display(description="Observed", ordering="observed_at")
    def observed(self, obj: GoldenDataPoint) -> str:
        return show_observed(obj.observed_at)

    @admin.display(description="Value", ordering="value")
    def value_label(self, obj: GoldenDataPoint) -> str:
        text = f"{show_decimal(obj.value)} {obj.unit}".strip()
        if obj.is_override:
            return format_html('{} <span class="aurum-status aurum-tone-warn">override</span>', text)
        return text

    @admin.display(description="Believed", ordering="recorded_from")
    def belief_label(self, obj: GoldenDataPoint) -> str:
        if obj.recorded_to is None:
            return format_html(
                '<span class="aurum-status aurum-tone-ok">current</span><br><span class="aurum-when">since {}</span>',
                show_moment(obj.recorded_from),
            )
        return format_html(
            '<span class="aurum-status aurum-tone-muted">superseded</span><br><span class="aurum-when">{}<br>→ {}</span>',
            show_moment(obj.recorded_from), show_moment(obj.recorded_to),
        )  # fmt: skip

    @admin.display(description="Recorded", ordering="recorded_from")
    def recorded(self, obj: GoldenDataPoint) -> str:
        return format_html('<span class="aurum-when">{}</span>', show_moment(obj.recorded_from))

    def get_list_display(self, request: HttpRequest) -> Any:
        if request.GET.get("belief") == "all" or request.GET.get("as_of"):
            return self.list_display
        return tuple("recorded" if name == "belief_label" else name for name in self.list_display)

    @admin.display(description="Recorded from")
    def recorded_from_label(self, obj: GoldenDataPoint) -> str:
        return show_moment(obj.recorded_from)

    @admin.display(description="Recorded to")
    def recorded_to_label(self, obj: GoldenDataPoint) -> str:
        return show_moment(obj.recorded_to) if obj.recorded_to else "— (current)"

    @admin.display(description="Batch", ordering="batch_id")
    def batch_column(self, obj: GoldenDataPoint) -> str:
        return batch_link(obj.batch_id) if obj.batch_id else "—"

    @admin.display(description="Quality flags")
    def quality_flags_label(self, obj: GoldenDataPoint) -> str:
        return ", ".join(obj.quality_flags or []) or "—"

    @admin.display(description="Superseded by")
    def superseded_by_batch_link(self, obj: GoldenDataPoint) -> str:
        if obj.recorded_to is None:
            return "—"
        if obj.superseded_by_batch_id:
            return batch_link(obj.superseded_by_batch_id)
        return "a steward override or its removal"

    # --- the change page ------------------------------------------------------------------------------
    def has_override_permission(self, request: HttpRequest, obj: GoldenDataPoint | None = None) -> bool:
        return self._allowed(request, self.override_roles, obj)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: GoldenDataPoint | None = None,
    ) -> Any:  # fmt: skip
        if obj is not None:
            context.update(self._panels(request, obj))
            context["subtitle"] = f"{obj.entity_key} · {obj.measure} · {show_observed(obj.observed_at)}"
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _panels(self, request: HttpRequest, gdp: GoldenDataPoint) -> dict[str, Any]:
        lineage = selectors.gdp_lineage(gdp=gdp)
        history = lineage["history"]
        current = next((version for version in history if version.recorded_to is None), None)
        rows = []
        for version in history:
            rows.append(
                {
                    "version": version,
                    "url": reverse("admin:storage_goldendatapoint_change", args=[version.pk]),
                    "value": f"{show_decimal(version.value)} {version.unit}".strip(),
                    "this": version.pk == gdp.pk,
                }
            )
        raw, batch = lineage["raw_record"], lineage["batch"]
        return {
            "gdp": gdp,
            "value_text": f"{show_decimal(gdp.value)} {gdp.unit}".strip(),
            "observed_text": show_observed(gdp.observed_at),
            "dimensions_text": show_dimensions(gdp.dimensions),
            "raw": raw,
            "raw_payload": pretty_json(raw.payload) if raw is not None else "",
            "raw_url": reverse("admin:storage_rawrecord_change", args=[raw.pk]) if raw is not None else "",
            "lineage_batch": batch,
            "lineage_batch_badge": batch_status_badge(batch) if batch is not None else "",
            "lineage_source": lineage["source"],
            "source_url": reverse("admin:compute_source_change", args=[lineage["source"].pk])
            if lineage["source"] is not None
            else "",
            "history_rows": rows,
            "current": current,
            "current_text": f"{show_decimal(current.value)} {current.unit}".strip() if current else "",
            "current_url": reverse("admin:storage_goldendatapoint_change", args=[current.pk]) if current else "",
            "may_override": self.has_override_permission(request, gdp),
            "override_url": reverse("admin:storage_goldendatapoint_override", args=[gdp.pk]),
            "remove_override_url": reverse("admin:storage_goldendatapoint_remove_override", args=[gdp.pk]),
            "override_form": OverrideForm(initial={"value": show_decimal(gdp.value)}),
            "contract_url": reverse("admin:host_datacontract_change", args=[gdp.contract_id]),
        }

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/override/", wrap(self.override_view), name="storage_goldendatapoint_override"),
            path(
                "<path:object_id>/remove-override/",
                wrap(self.remove_override_view),
                name="storage_goldendatapoint_remove_override",
            ),
            *super().get_urls(),
        ]

    def _gdp_for_override(self, request: HttpRequest, object_id: str) -> GoldenDataPoint | HttpResponse:
        gdp = self.get_object(request, unquote(object_id))
        if gdp is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_override_permission(request, gdp):
            raise PermissionDenied
        return gdp

    def override_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST value and reason: the steward's value becomes the key's current version."""
        gdp = self._gdp_for_override(request, object_id)
        if isinstance(gdp, HttpResponse):
            return gdp
        change_url = reverse("admin:storage_goldendatapoint_change", args=[gdp.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        form = OverrideForm(request.POST)
        if not form.is_valid():
            for name, errors in form.errors.items():
                where = f"{name}: " if name in form.fields else ""
                for error in errors:
                    self.message_user(request, f"Not overridden: {where}{error}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        try:
            override = services.gdp_override_set(
                actor=request.user, gdp=gdp, value=form.cleaned_data["value"], reason=form.cleaned_data["reason"]
            )
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"Not overridden: {_refusal(exc)}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        self.message_user(
            request,
            f"{_key_text(override)} is now {show_decimal(override.value)} {override.unit} (steward override). "
            "It wins over incoming data until the override is removed.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:storage_goldendatapoint_change", args=[override.pk]))

    def remove_override_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST (optional reason): end the override; the survivorship rule's value from the data returns."""
        gdp = self._gdp_for_override(request, object_id)
        if isinstance(gdp, HttpResponse):
            return gdp
        change_url = reverse("admin:storage_goldendatapoint_change", args=[gdp.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        try:
            restored = services.gdp_override_remove(
                actor=request.user, gdp=gdp, reason=request.POST.get("reason", "").strip()[:2000]
            )
        except (DomainError, ValidationError) as exc:
            self.message_user(request, f"Override not removed: {_refusal(exc)}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        if restored.recorded_to is None:
            origin = f" from batch {restored.batch_id}" if restored.batch_id else ""
            text = f"Override removed: {_key_text(restored)} is {show_decimal(restored.value)} {restored.unit} again{origin}."
        else:
            text = (
                f"Override removed: {_key_text(restored)} has no value from the data, so it has no current value now."
            )
        self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:storage_goldendatapoint_change", args=[restored.pk]))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        extra = {"belief_note": _belief_note(request), "is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, extra)


def _key_text(gdp: GoldenDataPoint) -> str:
    dimensions = f" ({show_dimensions(gdp.dimensions)})" if gdp.dimensions else ""
    return f"{gdp.measure} of {gdp.entity_key} on {show_observed(gdp.observed_at)}{dimensions}"


def _refusal(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


def _belief_note(request: HttpRequest) -> str:
    moment = parse_moment(request.GET.get("as_of", ""))
    if moment is not None:
        return f"What Aurum believed at {show_moment(moment)} ({timezone.get_current_timezone_name()})."
    if request.GET.get("belief") == "all":
        return "Every version: current values and the ones later versions superseded."
    return "Current values only. Pick “All versions” or a moment under “By belief” for the history."
