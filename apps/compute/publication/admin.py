"""The portal's publication pages: publish a KPI (with the policy check shown before confirming), the
published outputs (values, hash, supersedes chain, evidence), publication requests and restatements
(approve or reject with a reason).

Every write goes through `apps.compute.publication.services`; a refusal comes back as form errors,
nothing written. Outputs, requests and restatements are never edited by hand.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.compute.kpis.admin import _badge
from apps.compute.kpis.models import KpiVersion
from apps.compute.publication import services
from apps.compute.publication.choices import PublicationRequestStatusChoices, RestatementStatusChoices
from apps.compute.publication.models import PublicationRequest, Restatement
from apps.kernel.admin import ReadOnlyTenantScopedAdmin
from apps.kernel.context import get_tenant_context
from apps.kernel.errors import DomainError
from apps.kernel.roles import EDITOR_ROLES, RoleChoices
from apps.storage.models import CalendarPeriod, KpiValue
from apps.storage.published import PublicationKindChoices, PublishedOutput, content_hash_of

TEMPLATES = "admin/compute/publication"
# Who reads the trust ledger in the portal (apps/trust/admin.py says so too; compute links to it by URL only).
EVIDENCE_READERS = frozenset({RoleChoices.ADMIN, RoleChoices.AUDITOR})


def _evidence_admin_url(kind: str, kpi_key: str) -> str:
    """The trust ledger's portal page, filtered (by address: compute does not import trust)."""
    return reverse("admin:trust_evidencerecord_changelist") + f"?kind={kind}&q=kpi+{kpi_key}"


def _output_link(output: PublishedOutput | None) -> str:
    if output is None:
        return "—"
    url = reverse("admin:storage_publishedoutput_change", args=[output.pk])
    return format_html('<a href="{}">{} v{}</a>', url, output.kpi_key, output.version)


def _rows_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    if not rows:
        return format_html("<p>{}</p>", "No values.")
    head = format_html_join("", "<th>{}</th>", ((label,) for _key, label in columns))
    body = format_html_join(
        "", "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((_cell(row, key),) for key, _label in columns)),) for row in rows),
    )  # fmt: skip
    return format_html('<table class="aurum-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if key == "dimensions":
        return ", ".join(f"{k}={v}" for k, v in sorted((value or {}).items())) or "—"
    if key == "status" and value:
        return _badge(str(value), str(value))
    return "—" if value is None else str(value)


VALUE_COLUMNS = [("period", "Period"), ("dimensions", "Dimensions"), ("actual", "Actual"), ("target", "Target"),
                 ("variance", "Variance"), ("attainment", "% attained"), ("status", "Status"), ("streak", "Streak"),
                 ("gdp_count", "GDPs")]  # fmt: skip
DIFF_COLUMNS = [("period", "Period"), ("dimensions", "Dimensions"), ("old", "Published"), ("new", "Now"),
                ("delta", "Change")]  # fmt: skip


def _tenant(request: HttpRequest) -> Any:
    context = get_tenant_context(request)
    return context.tenant if context is not None else None


# --- published outputs and the publish page ----------------------------------------------------------------
class PublishForm(forms.Form):
    kpi_version = forms.ModelChoiceField(queryset=KpiVersion.objects.none(), label="KPI",
                                         help_text="The active version of a computed KPI.")  # fmt: skip
    periods = forms.ModelMultipleChoiceField(
        queryset=CalendarPeriod.objects.none(), required=False, widget=forms.SelectMultiple(attrs={"size": 12}),
        help_text="Periods of the KPI's calendar and grain that have values. Choose the KPI and press Check "
                  "to list them.",
    )  # fmt: skip
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Optional note (for a request: what the approver should know).")  # fmt: skip

    def __init__(self, *args: Any, tenant: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        versions = KpiVersion.objects.for_tenant(tenant).active().filter(computed_as_of__isnull=False)
        self.fields["kpi_version"].queryset = versions.select_related("definition").order_by("definition__key")
        chosen = self.data.get("kpi_version") or self.initial.get("kpi_version")
        version = versions.filter(pk=chosen).first() if str(chosen or "").isdigit() else None
        if version is not None:
            with_values = KpiValue.objects.filter(kpi_version=version).values("period_id")
            self.fields["periods"].queryset = CalendarPeriod.objects.filter(pk__in=with_values).order_by("start")
        self.version = version


@admin.register(PublishedOutput)
class PublishedOutputAdmin(ReadOnlyTenantScopedAdmin):
    list_display = ("kpi_key", "version", "kind", "periods_text", "kpi_version_label", "published_by", "approved_by",
                    "published_at", "short_hash")  # fmt: skip
    list_filter = ("kind", "kpi_key")
    search_fields = ("kpi_key", "content_hash")
    change_list_template = f"{TEMPLATES}/output_change_list.html"
    fields = ("kpi_key", "kpi_version_label", "version", "kind", "periods_text", "as_of", "content_hash",
              "hash_check", "contract_versions", "published_by", "approved_by", "published_at", "reason",
              "supersedes_chain", "superseded_by_links", "closed_period", "policy_check", "values_table",
              "evidence_link")  # fmt: skip
    readonly_fields = (*fields, "evidence_note")
    publish_roles = EDITOR_ROLES

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("published_by", "approved_by", "closed_period")

    @admin.display(description="periods")
    def periods_text(self, obj: PublishedOutput) -> str:
        labels = obj.period_labels or []
        return ", ".join(labels[:6]) + (f" … ({len(labels)})" if len(labels) > 6 else "")

    @admin.display(description="hash")
    def short_hash(self, obj: PublishedOutput) -> str:
        return obj.content_hash[:12]

    @admin.display(description="hash check")
    def hash_check(self, obj: PublishedOutput) -> str:
        ok = content_hash_of(obj) == obj.content_hash
        return "The stored values hash to the content hash." if ok else "ALTERED: the values do not hash to it."

    @admin.display(description="supersedes (chain)")
    def supersedes_chain(self, obj: PublishedOutput) -> str:
        chain, current, seen = [], obj.supersedes, set()
        while current is not None and current.pk not in seen:
            seen.add(current.pk)
            chain.append(current)
            current = current.supersedes
        if not chain:
            return "—"
        return format_html_join(" ← ", "{}", ((_output_link(o),) for o in chain))

    @admin.display(description="superseded by")
    def superseded_by_links(self, obj: PublishedOutput) -> str:
        later = list(obj.superseded_by.all())
        return format_html_join(", ", "{}", ((_output_link(o),) for o in later)) if later else "— (in force)"

    @admin.display(description="policy check")
    def policy_check(self, obj: PublishedOutput) -> str:
        if not obj.policy_reasons:
            return "— (period-close snapshot: no policy is evaluated)" if obj.kind == "period_close" else "—"
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{}: {}</li>", ((r.get("kind"), r.get("message")) for r in obj.policy_reasons)
        ))  # fmt: skip

    @admin.display(description="values")
    def values_table(self, obj: PublishedOutput) -> str:
        return _rows_table(obj.values or [], VALUE_COLUMNS)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """The ledger is read by tenant admins and auditors: others get a note, not a link that answers 403."""
        fields = list(super().get_fields(request, obj))
        context = get_tenant_context(request)
        if context is None or not context.has_role(EVIDENCE_READERS):
            fields = ["evidence_note" if name == "evidence_link" else name for name in fields]
        return fields

    @admin.display(description="evidence")
    def evidence_note(self, obj: PublishedOutput) -> str:
        kind = "kpi.restated" if obj.kind == PublicationKindChoices.RESTATEMENT else "kpi.published"
        return (f"The publication is an entry ({kind}, subject 'kpi {obj.kpi_key} {obj.kpi_version_label}') of the "
                "tenant's evidence ledger, which tenant admins and auditors read (Trust › Evidence records).")  # fmt: skip

    @admin.display(description="evidence")
    def evidence_link(self, obj: PublishedOutput) -> str:
        kind = "kpi.restated" if obj.kind == PublicationKindChoices.RESTATEMENT else "kpi.published"
        return format_html('<a href="{}">Evidence ledger entries ({})</a>', _evidence_admin_url(kind, obj.kpi_key),
                           kind)  # fmt: skip

    # --- publish page
    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [path("publish/", wrap(self.publish_view), name="storage_publishedoutput_publish"),
                *super().get_urls()]  # fmt: skip

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return _tenant(request) is not None and self._allowed(request, self.publish_roles)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        extra = {"may_publish": self.has_publish_permission(request),
                 "publish_url": reverse("admin:storage_publishedoutput_publish")}  # fmt: skip
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def publish_view(self, request: HttpRequest) -> HttpResponse:
        """Choose a KPI and periods, see the policy decision, then publish (or ask a second person)."""
        if not self.has_publish_permission(request):
            raise PermissionDenied
        tenant = _tenant(request)
        form = PublishForm(request.POST or None, tenant=tenant, initial={"kpi_version": request.GET.get("kpi")})
        decision = None
        if request.method == "POST" and form.is_valid():
            step = request.POST.get("step", "check")
            version, periods = form.cleaned_data["kpi_version"], list(form.cleaned_data["periods"])
            try:
                if step == "publish":
                    output = services.kpi_publish(actor=request.user, tenant=tenant, version=version, periods=periods,
                                                  reason=form.cleaned_data["reason"])  # fmt: skip
                    messages.success(request, f"Published {output} (hash {output.content_hash[:12]}…).")
                    return HttpResponseRedirect(reverse("admin:storage_publishedoutput_change", args=[output.pk]))
                if step == "request":
                    row = services.publication_request_create(actor=request.user, tenant=tenant, version=version,
                                                              periods=periods, comment=form.cleaned_data["reason"])  # fmt: skip
                    messages.success(request, "Publication requested: a different steward must approve it.")
                    return HttpResponseRedirect(reverse("admin:compute_publicationrequest_change", args=[row.pk]))
                if periods:
                    chosen = services.periods_for(version, periods)
                    decision = services.publication_check(tenant=tenant, version=version, periods=chosen,
                                                          publisher=request.user)  # fmt: skip
            except ValidationError as exc:
                _form_errors(form, exc)
            except DomainError as exc:
                form.add_error(None, _refusal_text(exc))
        return TemplateResponse(request, f"{TEMPLATES}/publish.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Publish a KPI", "form": form,
            "decision": decision, "four_eyes": decision is not None and services.four_eyes_required(decision),
            "changelist_url": reverse("admin:storage_publishedoutput_changelist"),
        })  # fmt: skip


def _form_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _refusal_text(exc: DomainError) -> str:
    unmet = exc.extensions.get("unmet")
    if unmet:
        return "Refused. Unmet: " + " ".join(f"[{row['kind']}] {row['message']}" for row in unmet)
    return exc.detail


# --- decisions: publication requests and restatements ------------------------------------------------------
class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args: Any, reason_required: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reason_required = reason_required
        self.fields["reason"].help_text = "Required." if reason_required else "Required to reject."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        needs = self.reason_required or data.get("decision") == "reject"
        if needs and not (data.get("reason") or "").strip():
            self.add_error("reason", "Give a reason.")
        return data


class _DecideMixin:
    """A `<id>/decide/` page: approve or reject through the services, errors shown on the form."""

    decide_roles = EDITOR_ROLES
    reason_required = True
    admin_site: Any
    opts: Any

    def has_decide_permission(self, request: HttpRequest, obj: Any) -> bool:
        return self._allowed(request, self.decide_roles, obj)  # type: ignore[attr-defined]

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        name = f"{self.opts.app_label}_{self.opts.model_name}_decide"
        return [path("<path:object_id>/decide/", wrap(self.decide_view), name=name),
                *super().get_urls()]  # type: ignore[misc]  # fmt: skip

    def open_for_decision(self, obj: Any) -> bool:
        raise NotImplementedError

    def waiting_note(self, request: HttpRequest, obj: Any) -> str:
        """Why this user may not decide though the row is open (shown instead of the link)."""
        return ""

    def decide(self, request: HttpRequest, obj: Any, decision: str, reason: str) -> str:
        raise NotImplementedError

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], add: bool = False,
                           change: bool = False, form_url: str = "", obj: Any = None) -> Any:  # fmt: skip
        note = self.waiting_note(request, obj) if obj is not None else ""
        context["waiting_note"] = note
        if obj is not None and not note and self.open_for_decision(obj) and self.has_decide_permission(request, obj):
            context["decide_url"] = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_decide",
                                            args=[obj.pk])  # fmt: skip
        return super().render_change_form(request, context, add, change, form_url, obj)  # type: ignore[misc]

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]
        if not self.has_decide_permission(request, obj):
            raise PermissionDenied
        form = DecisionForm(request.POST or None, reason_required=self.reason_required)
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    text = self.decide(request, obj, form.cleaned_data["decision"], form.cleaned_data["reason"])
            except ValidationError as exc:
                _form_errors(form, exc)
            except DomainError as exc:
                form.add_error(None, _refusal_text(exc))
            else:
                messages.success(request, text)
                return HttpResponseRedirect(change_url)
        return TemplateResponse(request, f"{TEMPLATES}/decide.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "title": f"Decide: {obj}", "object": obj,
            "form": form, "change_url": change_url, "open": self.open_for_decision(obj),
        })  # fmt: skip


@admin.register(PublicationRequest)
class PublicationRequestAdmin(_DecideMixin, ReadOnlyTenantScopedAdmin):
    list_display = ("__str__", "status", "requested_by", "created_at", "decided_by", "decided_at")
    list_filter = ("status",)
    fields = ("kpi_version", "periods_text", "status", "comment", "requested_by", "created_at", "decided_by",
              "decided_at", "decision_comment", "output_link")  # fmt: skip
    readonly_fields = fields
    reason_required = False
    change_form_template = f"{TEMPLATES}/decidable_change_form.html"

    @admin.display(description="output")
    def output_link(self, obj: PublicationRequest) -> str:
        return _output_link(obj.output)

    @admin.display(description="periods")
    def periods_text(self, obj: PublicationRequest) -> str:
        return ", ".join(obj.period_labels or [])

    def open_for_decision(self, obj: PublicationRequest) -> bool:
        return obj.status == PublicationRequestStatusChoices.PENDING

    def waiting_note(self, request: HttpRequest, obj: PublicationRequest) -> str:
        if self.open_for_decision(obj) and obj.requested_by_id == request.user.pk:
            return ("You requested this publication: a different steward or a tenant admin approves or rejects it "
                    "(four eyes).")  # fmt: skip
        return ""

    def decide(self, request: HttpRequest, obj: PublicationRequest, decision: str, reason: str) -> str:
        if decision == "approve":
            row = services.publication_request_approve(actor=request.user, request=obj, comment=reason)
            return f"Approved and published: {row.output}."
        services.publication_request_reject(actor=request.user, request=obj, comment=reason)
        return "Publication request rejected."


@admin.register(Restatement)
class RestatementAdmin(_DecideMixin, ReadOnlyTenantScopedAdmin):
    list_display = ("kpi_key", "supersedes_link", "periods_text", "changes", "status", "first_approved_by",
                    "proposed_at", "decided_by")  # fmt: skip
    list_filter = ("status", "kpi_key")
    fields = ("kpi_key", "kpi_version", "supersedes_link", "periods_text", "as_of", "trigger", "status",
              "proposed_at", "downstream", "first_approved_by", "first_approved_at", "first_reason", "decided_by",
              "decided_at", "reason", "output_link", "diff_table")  # fmt: skip
    readonly_fields = fields
    change_form_template = f"{TEMPLATES}/decidable_change_form.html"

    @admin.display(description="supersedes")
    def supersedes_link(self, obj: Restatement) -> str:
        return _output_link(obj.supersedes)

    @admin.display(description="output")
    def output_link(self, obj: Restatement) -> str:
        return _output_link(obj.output)

    @admin.display(description="periods")
    def periods_text(self, obj: Restatement) -> str:
        return ", ".join(obj.period_labels or [])

    @admin.display(description="changes")
    def changes(self, obj: Restatement) -> int:
        return len(obj.diff or [])

    @admin.display(description="diff (published → now)")
    def diff_table(self, obj: Restatement) -> str:
        return _rows_table(obj.diff or [], DIFF_COLUMNS)

    def open_for_decision(self, obj: Restatement) -> bool:
        return obj.status == RestatementStatusChoices.PROPOSED

    def decide(self, request: HttpRequest, obj: Restatement, decision: str, reason: str) -> str:
        if decision == "approve":
            row = services.restatement_approve(actor=request.user, restatement=obj, reason=reason)
            if row.status == RestatementStatusChoices.PROPOSED:
                return "First approval recorded: a different steward must approve it too (four eyes)."
            return f"Restated: {row.output} supersedes {row.supersedes.kpi_key} v{row.supersedes.version}."
        services.restatement_reject(actor=request.user, restatement=obj, reason=reason)
        return "Restatement rejected: the published numbers stay."
