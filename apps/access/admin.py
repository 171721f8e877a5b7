from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from apps.access import services
from apps.access.forms import ApiTokenAdminForm
from apps.access.models import ApiToken
from apps.kernel.admin import TenantScopedAdmin
from apps.kernel.context import get_tenant_context
from apps.kernel.roles import PORTAL_ROLES, TENANT_ADMIN_ROLES


@admin.register(ApiToken)
class ApiTokenAdmin(TenantScopedAdmin):
    """Tokens are created here (shown once) and revoked, never edited or deleted.

    Tenant admins manage every token of the tenant; other members only their own.
    """

    form = ApiTokenAdminForm
    add_roles = PORTAL_ROLES
    change_roles = frozenset()
    delete_roles = frozenset()
    list_display = ("name", "display_prefix", "user", "scopes", "expires_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user", "tenant")
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        queryset = super().get_queryset(request)
        context = get_tenant_context(request)
        if context is not None and not context.has_role(TENANT_ADMIN_ROLES):
            queryset = queryset.filter(user=request.user)
        return queryset

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return (
            "tenant",
            "user",
            "name",
            "display_prefix",
            "scopes",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "created_by",
            "created_at",
        )

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        return self.get_readonly_fields(request, obj) if obj is not None else super().get_fields(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            kwargs["queryset"] = self._token_owners(request)
            kwargs.setdefault("initial", request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _token_owners(self, request: HttpRequest) -> QuerySet[Any]:
        users = get_user_model().objects.filter(is_active=True)
        context = get_tenant_context(request)
        if context is None or context.is_superuser:
            return users
        if context.has_role(TENANT_ADMIN_ROLES):
            return users.filter(aurum_memberships__tenant=context.tenant)
        return users.filter(pk=request.user.pk)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, self.view_roles, obj, write=False)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        token, plain = services.api_token_create(
            actor=request.user,
            tenant=form.cleaned_data["tenant"],
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expires_at"],
        )
        obj.pk = token.pk
        request._aurum_plain_token = plain  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: Any = None) -> HttpResponse:
        """Show the plain token once, on a page of its own; it is stored nowhere."""
        token = ApiToken.objects.select_related("user", "tenant").get(pk=obj.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "token": token,
            "plain_token": request._aurum_plain_token,  # type: ignore[attr-defined]
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "access/token_created.html", context)

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True).select_related("user", "tenant"))
        for token in tokens:
            services.api_token_revoke(actor=request.user, token=token, reason="revoked in the portal")
        self.message_user(request, f"{len(tokens)} token(s) revoked.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Revoking is allowed to whoever sees the token (own tokens, or all as tenant admin).
        actions = super().get_actions(request)
        if "revoke" not in actions and self.has_view_permission(request):
            actions["revoke"] = self.get_action("revoke")
        return actions
