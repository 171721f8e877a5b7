from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.host import services
from apps.host.choices import TenantStatusChoices
from apps.host.models import Membership, Tenant
from apps.kernel.admin import TenantScopedAdmin
from apps.kernel.roles import TENANT_ADMIN_ROLES


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_lookup = "pk"
    add_roles = frozenset()  # creating tenants is a platform (superuser) action
    change_roles = TENANT_ADMIN_ROLES
    delete_roles = frozenset()
    list_display = ("slug", "name", "status", "timezone", "created_at")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    actions = ["suspend", "activate"]

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> tuple[str, ...]:
        readonly = ("created_at", "updated_at")
        if obj is not None:
            readonly += ("slug",)
        if not request.user.is_superuser:
            readonly += ("status",)
        return readonly

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if not change:
            created = services.tenant_create(actor=request.user, slug=obj.slug, name=obj.name, timezone=obj.timezone)
            obj.pk = created.pk
            return
        services.tenant_update(actor=request.user, tenant=obj, name=obj.name, timezone=obj.timezone)
        if "status" in form.changed_data:
            services.tenant_set_status(actor=request.user, tenant=obj, status=obj.status)

    def has_status_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    @admin.action(description="Suspend the selected tenants (API access refused)", permissions=["status"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_status(request, queryset, TenantStatusChoices.SUSPENDED)

    @admin.action(description="Reactivate the selected tenants", permissions=["status"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_status(request, queryset, TenantStatusChoices.ACTIVE)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Tenant], status: str) -> None:
        for tenant in queryset:
            services.tenant_set_status(actor=request.user, tenant=tenant, status=status)
        self.message_user(request, f"{queryset.count()} tenant(s) now {status}.", messages.SUCCESS)


class MembershipAdminForm(forms.ModelForm):
    """Members are added by username: a select of every account would show tenant admins
    the users of all other tenants."""

    username = forms.CharField(required=False, help_text="The account's username.")

    class Meta:
        model = Membership
        fields = ("tenant", "role")

    def clean_username(self) -> str:
        username = self.cleaned_data.get("username", "").strip()
        if self.instance.pk is None:
            if not username:
                raise forms.ValidationError("Enter the username of the account to add.")
            user = get_user_model().objects.filter(username=username, is_active=True).first()
            if user is None:
                raise forms.ValidationError(f"No active account is called '{username}'.")
            self.instance.user = user
        return username

    def validate_unique(self) -> None:
        tenant, user_id = self.cleaned_data.get("tenant"), getattr(self.instance, "user_id", None)
        adding = self.instance.pk is None and tenant is not None and user_id is not None
        if adding and Membership.objects.filter(tenant=tenant, user_id=user_id).exists():
            self.add_error("username", "This account is already a member of the tenant; change its role there.")
        super().validate_unique()


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    add_roles = TENANT_ADMIN_ROLES
    change_roles = TENANT_ADMIN_ROLES
    delete_roles = TENANT_ADMIN_ROLES
    list_display = ("user", "role", "tenant", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email")
    list_select_related = ("user", "tenant")
    form = MembershipAdminForm

    def get_fields(self, request: HttpRequest, obj: Membership | None = None) -> tuple[str, ...]:
        return ("tenant", "user", "role") if obj is not None else ("tenant", "username", "role")

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> tuple[str, ...]:
        return ("tenant", "user") if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        saved = services.membership_set(actor=request.user, tenant=obj.tenant, user=obj.user, role=obj.role)
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_remove(actor=request.user, membership=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("tenant", "user"):
            services.membership_remove(actor=request.user, membership=membership)
