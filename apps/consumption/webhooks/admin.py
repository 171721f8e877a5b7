"""Portal pages for webhooks: endpoints (secret shown once, rotation, test message) and deliveries."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.consumption.webhooks import selectors, services
from apps.consumption.webhooks.choices import WebhookEventTypeChoices
from apps.consumption.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.kernel.admin import ReadOnlyTenantScopedAdmin, TenantScopedAdmin
from apps.kernel.errors import DomainError
from apps.kernel.roles import EDITOR_ROLES

RECENT_DELIVERIES = 10
_SHOWN_ONCE = "_aurum_webhook_shown_once"  # request attribute: the secret to show once


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="Where messages are POSTed.")
    event_types = forms.MultipleChoiceField(
        choices=WebhookEventTypeChoices.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="The event types sent to this endpoint (there is no 'all').",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("tenant", "url", "description", "event_types", "active")

    def _post_clean(self) -> None:
        # The service's own checks (event types, the outbound guard for this tenant), as form errors.
        super()._post_clean()
        if self.errors or self.instance.tenant_id is None:
            return
        try:
            services.webhook_endpoint_validate(endpoint=self.instance)
        except ValidationError as exc:
            self._update_errors(exc)


class RotateSecretForm(forms.Form):
    grace_hours = forms.IntegerField(
        min_value=0,
        max_value=int(services.MAX_GRACE.total_seconds() // 3600),
        initial=24,
        label="Grace period (hours)",
        help_text="How long the old secret keeps signing too, so receivers can switch; 0 ends it now.",
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    """Endpoints are created and changed through the services; the secret is shown once, on a page of its own."""

    form = WebhookEndpointForm
    delete_roles = EDITOR_ROLES  # as in the API, where deleting needs the write scope
    list_display = ("url", "description", "event_types_list", "active", "consecutive_failures", "created_at")
    list_filter = ("active",)
    search_fields = ("url", "description")
    list_select_related = ("tenant",)
    actions = ["rotate_secret", "send_test_message"]
    readonly_fields = (
        "disabled_reason",
        "disabled_at",
        "consecutive_failures",
        "previous_secret_expires_at",
        "created_by",
        "created_at",
        "recent_deliveries",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> Any:
        fields = ["tenant", "url", "description", "event_types", "active"]
        return fields + list(self.readonly_fields) if obj is not None else fields

    @admin.display(description="Event types")
    def event_types_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types)

    @admin.display(description="Recent deliveries")
    def recent_deliveries(self, obj: WebhookEndpoint) -> str:
        deliveries = list(selectors.webhook_delivery_list(tenant=obj.tenant_id, endpoint=obj)[:RECENT_DELIVERIES])
        if not deliveries:
            return "None yet."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:consumption_webhookdelivery_change", args=[d.pk]),
                    d.message_id,
                    d.event_type,
                    d.get_status_display(),
                    d.attempt_count,
                    d.last_status_code or "—",
                    d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                )
                for d in deliveries
            ),
        )
        return format_html(
            "<table><thead><tr><th>Message</th><th>Type</th><th>Status</th><th>Attempts</th><th>Last status</th>"
            "<th>Created</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    # --- writes through the services -----------------------------------------------------------
    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in services.ENDPOINT_ATTRS}
            services.webhook_endpoint_update(actor=request.user, endpoint=obj, **changes)
            return
        endpoint, secret = services.webhook_endpoint_create(
            actor=request.user,
            tenant=data["tenant"],
            url=data["url"],
            event_types=data["event_types"],
            description=data.get("description", ""),
            active=data.get("active", True),
        )
        obj.pk = endpoint.pk
        setattr(request, _SHOWN_ONCE, secret)

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: Any = None) -> HttpResponse:
        """Show the signing secret once, on a page of its own; it appears nowhere else in the portal."""
        endpoint = WebhookEndpoint.objects.get(pk=obj.pk)
        return self._secrets_page(request, "Webhook endpoint created", [(endpoint, getattr(request, _SHOWN_ONCE))])

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        services.webhook_endpoint_delete(actor=request.user, endpoint=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.webhook_endpoint_delete(actor=request.user, endpoint=endpoint)

    def _secrets_page(self, request: HttpRequest, title: str, rotated: list[tuple[WebhookEndpoint, str]]) -> Any:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "rotated": rotated,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/consumption/webhookendpoint/secret.html", context)

    # --- actions ------------------------------------------------------------------------------
    def has_edit_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.change_roles)

    @admin.action(description="Rotate the signing secret of the selected endpoints", permissions=["edit"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> Any:
        form = RotateSecretForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            grace = form.cleaned_data["grace_hours"] * 3600
            rotated = [
                services.webhook_endpoint_rotate_secret(actor=request.user, endpoint=endpoint, grace_seconds=grace)
                for endpoint in queryset
            ]
            return self._secrets_page(request, "Signing secrets rotated", rotated)
        context = {
            **self.admin_site.each_context(request),
            "title": "Rotate signing secrets",
            "endpoints": list(queryset),
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/consumption/webhookendpoint/rotate_secret.html", context)

    @admin.action(description="Send a test message to the selected endpoints", permissions=["edit"])
    def send_test_message(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        sent, refused = 0, []
        for endpoint in queryset:
            try:
                services.webhook_endpoint_send_test(actor=request.user, endpoint=endpoint)
                sent += 1
            except DomainError as exc:
                refused.append(f"{endpoint.url}: {exc.detail}")
        if sent:
            self.message_user(
                request, f"Test message sent to {sent} endpoint(s); see Webhook deliveries.", messages.SUCCESS
            )
        for text in refused:
            self.message_user(request, text, messages.WARNING)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "status_code", "latency_ms", "succeeded", "error", "response_excerpt",
              "requested_by")  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.admin_site._registry[WebhookDelivery].has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyTenantScopedAdmin):
    """Messages and their attempts, written by the services only; editors may redeliver."""

    list_display = ("message_id", "event_type", "endpoint", "status", "attempt_count", "last_status_code",
                    "next_attempt_at", "created_at")  # fmt: skip
    list_filter = ("status", "event_type")
    search_fields = ("=message_id", "endpoint__url")
    list_select_related = ("endpoint",)
    show_full_result_count = False
    actions = ["redeliver"]
    inlines = [WebhookAttemptInline]
    fields = ("endpoint", "event_type", "message_id", "status", "attempt_count", "next_attempt_at",
              "last_status_code", "last_error", "delivered_at", "created_at", "payload")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Body (JSON sent)")
    def payload(self, obj: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False))

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, EDITOR_ROLES)

    @admin.action(description="Redeliver the selected messages (same id, a new attempt)", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        queued, refused = 0, []
        for delivery in queryset:
            try:
                services.webhook_delivery_redeliver(actor=request.user, delivery=delivery)
                queued += 1
            except DomainError as exc:
                refused.append(f"{delivery.message_id}: {exc.detail}")
        if queued:
            self.message_user(request, f"{queued} message(s) sent again.", messages.SUCCESS)
        for text in refused:
            self.message_user(request, text, messages.WARNING)
