from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.forms.fields import InvalidJSONInput
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.host import selectors, services
from apps.host.choices import ContractStatusChoices, PolicyKindChoices, PolicyStatusChoices, TenantStatusChoices
from apps.host.contracts.lifecycle import allowed_actions
from apps.host.models import ContractField, ContractVersion, DataContract, Membership, Policy, QualityRule, Tenant
from apps.host.policies.evaluation import ACTIONS, PolicySubject, effective_policies, evaluate
from apps.host.policies.kinds import KINDS
from apps.host.services.contracts import FIELD_ATTRS, RULE_ATTRS, VERSION_ATTRS
from apps.kernel.admin import TenantScopedAdmin
from apps.kernel.context import get_tenant_context
from apps.kernel.errors import DomainError
from apps.kernel.roles import EDITOR_ROLES, PORTAL_ROLES, TENANT_ADMIN_ROLES


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


# =====================================================================================================
# Data contracts, their versions, and policies
#
# Every write goes through the host services. Their refusals come back where the steward
# typed: `_ServiceFormMixin` runs the admin's change form once; when the service refuses
# (ValidationError keyed by field, "fields/2/pattern" for an inline row, or a domain error),
# the transaction is rolled back and the form is run again with the refusal attached to the
# form, the inline row and its cell, so the page shows the errors in place and saves nothing.
# =====================================================================================================

_REFUSAL = "_aurum_service_refusal"  # request attribute: the errors of the refused first pass


class _ServiceRefused(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@contextmanager
def _through_service() -> Iterator[None]:
    """Turn a service's refusal into `_ServiceRefused` (errors keyed like the service's)."""
    try:
        yield
    except ValidationError as exc:
        raise _ServiceRefused(_error_dict(exc)) from exc
    except DomainError as exc:
        raise _ServiceRefused({NON_FIELD_ERRORS: [_domain_message(exc)]}) from exc
    except IntegrityError as exc:
        raise _ServiceRefused({NON_FIELD_ERRORS: [f"The database refused the change: {exc}"]}) from exc


def _error_dict(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {key: [str(m) for m in messages] for key, messages in exc.message_dict.items()}
    return {NON_FIELD_ERRORS: [str(m) for m in exc.messages]}


def _domain_message(exc: DomainError) -> str:
    lines = [exc.detail]
    incompatibilities = exc.extensions.get("incompatibilities") or []
    lines += [f"• {item['message']} ({item['path']})" for item in incompatibilities]
    return "\n".join(lines)


def _refusal_text(exc: Exception) -> str:
    """One readable sentence (or a few) for a message: what the service refused and why."""
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, ValidationError):
        errors = _error_dict(exc)
        return " ".join(
            (" ".join(messages) if key == NON_FIELD_ERRORS else f"{key}: {' '.join(messages)}")
            for key, messages in errors.items()
        )
    return str(exc)


def _form_with_errors(form_class: type[forms.BaseForm], errors: dict[str, list[str]]) -> type[forms.BaseForm]:
    """`form_class`, refusing with `errors` (field errors where a field has that name, else non-field)."""

    class Refused(form_class):  # type: ignore[valid-type, misc]
        def clean(self) -> Any:
            cleaned = super().clean()
            for name, texts in errors.items():
                self.add_error(name if name in self.fields else None, texts)
            if not errors:
                self.add_error(None, "The change was refused.")
            return cleaned

    Refused.__name__ = form_class.__name__
    return Refused


class _ServiceFormMixin:
    """For ModelAdmins whose save_model / save_related call services inside `_through_service()`.

    Nothing is deleted through them, superusers included: versions and policies are retired, and
    a contract's versions and the registry hang on it.
    """

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        except _ServiceRefused as refused:  # the first pass was rolled back; show the form with the errors
            setattr(request, _REFUSAL, refused.errors)
            return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]
        errors = getattr(request, _REFUSAL, None)
        if errors is None or request.method != "POST":
            return form
        return _form_with_errors(form, self.form_errors_of_refusal(errors))

    def form_errors_of_refusal(self, errors: dict[str, list[str]]) -> dict[str, list[str]]:
        return errors


def _tenant_members(request: HttpRequest) -> QuerySet[Any]:
    """Accounts a contract may be assigned to: the active tenant's members (all accounts for superusers)."""
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    context = get_tenant_context(request)
    if context is None:
        return users.none()
    if context.tenant is None:
        return users if context.is_superuser else users.none()
    return users.filter(aurum_memberships__tenant=context.tenant).distinct()


def _status_badge(status: str, label: str) -> str:
    return format_html('<span class="aurum-status aurum-status-{}">{}</span>', status, label)


def _next_minor(contract: DataContract) -> str:
    latest = contract.versions.order_by("-major", "-minor", "-patch").first()
    return "1.0.0" if latest is None else f"{latest.major}.{latest.minor + 1}.0"


# --- data contracts ----------------------------------------------------------------------------------
class ContractVersionsInline(admin.TabularInline):
    """The contract's versions, newest first, each linking to its page; read-only here."""

    model = ContractVersion
    fields = ("version_link", "status_label", "proposed_by", "decided_by", "activated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Versions"
    ordering = ("-major", "-minor", "-patch")

    @admin.display(description="Version")
    def version_link(self, obj: ContractVersion) -> str:
        url = reverse("admin:host_contractversion_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.version)

    @admin.display(description="Status")
    def status_label(self, obj: ContractVersion) -> str:
        return _status_badge(obj.status, obj.get_status_display())

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.admin_site._registry[DataContract].has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OdcsUploadForm(forms.Form):
    file = forms.FileField(label="ODCS file", help_text="An ODCS v3 contract in YAML (.yaml / .yml).")
    key = forms.SlugField(
        required=False,
        label="Contract key",
        help_text="Import as a new version of this contract. Blank: the key comes from the document "
        "(a new contract when no contract has it yet).",
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > ODCS_MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {ODCS_MAX_BYTES // 1024} KB.")
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None


ODCS_MAX_BYTES = 2 * 1024 * 1024


@admin.register(DataContract)
class DataContractAdmin(_ServiceFormMixin, TenantScopedAdmin):
    view_roles = PORTAL_ROLES
    add_roles = EDITOR_ROLES
    change_roles = EDITOR_ROLES
    delete_roles = frozenset()  # contracts are never deleted; their versions are retired
    list_display = ("key", "name", "domain", "owner", "active_version", "version_count")
    list_display_links = ("key", "name")
    list_filter = ("domain",)
    search_fields = ("key", "name", "domain", "description")
    list_select_related = ("owner",)
    change_form_template = "admin/host/datacontract/change_form.html"
    change_list_template = "admin/host/datacontract/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[DataContract]:
        active = ContractVersion.objects.filter(contract=OuterRef("pk"), status=ContractStatusChoices.ACTIVE)
        return (
            super()
            .get_queryset(request)
            .annotate(
                _version_count=Count("versions", distinct=True),
                _active_version=Subquery(active.values("version")[:1]),
            )
        )

    @admin.display(description="Active version", ordering="_active_version")
    def active_version(self, obj: DataContract) -> str:
        return getattr(obj, "_active_version", None) or "—"

    @admin.display(description="Versions", ordering="_version_count")
    def version_count(self, obj: DataContract) -> int:
        return getattr(obj, "_version_count", 0)

    def get_fields(self, request: HttpRequest, obj: DataContract | None = None) -> tuple[str, ...]:
        return ("tenant", "key", "name", "domain", "owner", "description", "survivorship")

    def get_readonly_fields(self, request: HttpRequest, obj: DataContract | None = None) -> tuple[str, ...]:
        return ("tenant", "key") if obj is not None else ()

    def get_inlines(self, request: HttpRequest, obj: DataContract | None = None) -> list[Any]:
        return [ContractVersionsInline] if obj is not None else []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "owner":
            kwargs["queryset"] = _tenant_members(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("owner", request.user.pk)
        return initial

    def save_model(self, request: HttpRequest, obj: DataContract, form: Any, change: bool) -> None:
        with _through_service():
            if change:
                services.contract_update(
                    actor=request.user,
                    contract=obj,
                    name=obj.name,
                    domain=obj.domain,
                    description=obj.description,
                    owner=obj.owner,
                    survivorship=obj.survivorship,
                )
                return
            created = services.contract_create(
                actor=request.user,
                tenant=obj.tenant,
                key=obj.key,
                name=obj.name,
                domain=obj.domain,
                owner=obj.owner,
                description=obj.description,
                survivorship=obj.survivorship,
            )
        obj.pk, obj._state.adding = created.pk, False

    def response_add(self, request: HttpRequest, obj: DataContract, post_url_continue: str | None = None) -> Any:
        if not any(key in request.POST for key in ("_addanother", "_continue", IS_POPUP_VAR)):
            # Next step for a new contract: its first version.
            self.message_user(request, f"Contract “{obj.key}” created; now write its first version.", messages.SUCCESS)
            url = reverse("admin:host_contractversion_add")
            return HttpResponseRedirect(f"{url}?{urlencode({'contract': obj.pk, 'version': '1.0.0'})}")
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("upload-odcs/", wrap(self.odcs_upload_view), name="host_datacontract_odcs_upload"),
            path("<path:object_id>/new-version/", wrap(self.new_version_view), name="host_datacontract_new_version"),
            *super().get_urls(),
        ]

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: DataContract | None = None,
    ) -> Any:  # fmt: skip
        if obj is not None:
            version_admin = self.admin_site._registry[ContractVersion]
            latest = obj.versions.order_by("-major", "-minor", "-patch").first()
            context.update(
                may_add_version=version_admin.has_add_permission(request),
                latest_version=latest,
                next_version=_next_minor(obj),
                auditlog_url=reverse("admin:host_datacontract_auditlog", args=[obj.pk]),
                versions_url=reverse("admin:host_contractversion_changelist") + f"?contract__id__exact={obj.pk}",
                odcs_upload_url=reverse("admin:host_datacontract_odcs_upload") + f"?{urlencode({'key': obj.key})}",
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def new_version_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: a new draft copying the latest version (or `base`, a version of this contract), minor raised."""
        contract = self.get_object(request, unquote(object_id))
        if contract is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        version_admin = self.admin_site._registry[ContractVersion]
        if not version_admin.has_add_permission(request):
            raise PermissionDenied
        change_url = reverse("admin:host_datacontract_change", args=[contract.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        versions = contract.versions.order_by("-major", "-minor", "-patch")
        base = versions.filter(pk=request.POST.get("base")).first() if request.POST.get("base") else versions.first()
        if base is None:
            url = reverse("admin:host_contractversion_add")
            return HttpResponseRedirect(f"{url}?{urlencode({'contract': contract.pk, 'version': '1.0.0'})}")
        number = _next_minor(contract)
        try:
            draft = services.contract_version_create(
                actor=request.user,
                contract=contract,
                version=number,
                fields=[{name: getattr(f, name) for name in FIELD_ATTRS} for f in base.fields.all()],
                quality_rules=[
                    {"field": r.field.name if r.field_id else None, **{n: getattr(r, n) for n in RULE_ATTRS}}
                    for r in base.quality_rules.select_related("field")
                ],
                **{name: getattr(base, name) for name in VERSION_ATTRS if name != "notes"},
                copied_from=base,
            )
        except (ValidationError, DomainError, IntegrityError) as exc:
            self.message_user(request, f"No new version: {_refusal_text(exc)}", messages.ERROR)
            return HttpResponseRedirect(request.POST.get("next") or change_url)
        self.message_user(
            request,
            f"Draft {draft.version} created from {base.version}: edit its fields and rules, then propose it.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:host_contractversion_change", args=[draft.pk]))

    def odcs_upload_view(self, request: HttpRequest) -> HttpResponse:
        """Import an ODCS YAML file as a new draft (creating the contract when its key is new)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        context = get_tenant_context(request)
        tenant = context.tenant if context is not None else None
        if request.method == "POST":
            form = OdcsUploadForm(request.POST, request.FILES)
            if form.is_valid() and tenant is None:
                form.add_error(None, "Pick a tenant in the tenant switcher first: the contract belongs to one.")
            if form.is_valid():
                from apps.host.odcs.importer import contract_import
                from apps.host.odcs.parsing import OdcsError

                try:
                    draft = contract_import(
                        actor=request.user,
                        tenant=tenant,
                        text=form.cleaned_data["file"],
                        key=form.cleaned_data["key"] or None,
                    )
                except OdcsError as exc:
                    for problem in exc.problems:
                        where = ", ".join(
                            part for part in (f"line {problem.line}" if problem.line else "", problem.path) if part
                        )
                        form.add_error(None, f"{where}: {problem.message}" if where else problem.message)
                except (DomainError, ValidationError) as exc:
                    form.add_error(None, _refusal_text(exc))
                else:
                    self.message_user(
                        request,
                        f"Imported {draft.contract.key} {draft.version} as a draft: check it, then propose it.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:host_contractversion_change", args=[draft.pk]))
        else:
            form = OdcsUploadForm(initial={"key": request.GET.get("key", "")})
        return TemplateResponse(
            request,
            "admin/host/datacontract/odcs_upload.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Upload an ODCS contract",
                "form": form,
                "tenant": tenant,
            },
        )


# --- contract versions ---------------------------------------------------------------------------------
class AllowedValuesField(forms.CharField):
    """A list typed as `a, b, c` (or as a JSON list, for values with commas or of other types)."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip().startswith("[") else value
            except ValueError:
                return value
        if isinstance(value, list):
            simple = all(isinstance(v, str) and v and "," not in v and v.strip() == v for v in value)
            return ", ".join(value) if simple else json.dumps(value)
        return value

    def to_python(self, value: Any) -> list[Any]:
        text = (super().to_python(value) or "").strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                raise forms.ValidationError(f"Not a JSON list: {exc}.") from None
            if not isinstance(parsed, list):
                raise forms.ValidationError("A list of values.")
            return parsed
        return [item.strip() for item in text.split(",") if item.strip()]

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            before = initial if isinstance(initial, list) else self.to_python(initial)
            return before != self.to_python(data)
        except forms.ValidationError:
            return True


class ObjectJSONField(forms.JSONField):
    """A JSON object, shown blank when empty (not `null` or `{}` in every row), indented if asked."""

    def __init__(self, *args: Any, indent: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.indent = indent

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        if value in (None, {}, ""):
            return ""
        return json.dumps(value, indent=self.indent, ensure_ascii=False, cls=self.encoder)

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            after = self.to_python(data)
        except forms.ValidationError:
            return True
        before = json.loads(initial) if isinstance(initial, str) and initial else initial
        return (before or {}) != (after or {})


class ContractFieldForm(forms.ModelForm):
    allowed_values = AllowedValuesField(required=False, help_text="Comma-separated, or a JSON list.")

    class Meta:
        model = ContractField
        fields = (
            "name", "logical_type", "role", "required", "unique", "primary_key", "primary_key_position",
            "classification", "unit", "pattern", "minimum", "maximum", "max_length", "allowed_values", "description",
        )  # fmt: skip
        widgets = {
            "name": forms.TextInput(attrs={"size": 14}),
            "unit": forms.TextInput(attrs={"size": 5}),
            "pattern": forms.TextInput(attrs={"size": 12}),
            "minimum": forms.NumberInput(attrs={"style": "width: 6em"}),
            "maximum": forms.NumberInput(attrs={"style": "width: 6em"}),
            "max_length": forms.NumberInput(attrs={"style": "width: 5em"}),
            "primary_key_position": forms.NumberInput(attrs={"style": "width: 3.5em"}),
            "description": forms.TextInput(attrs={"size": 22}),
        }
        labels = {
            "logical_type": "Type", "required": "Req.", "unique": "Uniq.", "primary_key": "PK",
            "primary_key_position": "PK pos.", "minimum": "Min", "maximum": "Max", "max_length": "Max len.",
        }  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_values"].widget.attrs.setdefault("size", 14)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        values, kind = data.get("allowed_values"), data.get("logical_type")
        typed = self.data.get(self.add_prefix("allowed_values"), "").strip()
        if values and typed and not typed.startswith("[") and kind in ("integer", "number", "boolean"):
            data["allowed_values"] = [self._typed(value, kind) for value in values]
        return data

    def _typed(self, value: str, kind: str) -> Any:
        try:
            if kind == "boolean":
                return {"true": True, "false": False}[value.lower()]
            return int(value) if kind == "integer" else float(value)
        except (KeyError, ValueError):
            self.add_error("allowed_values", f"'{value}' is not a valid {kind}.")
            return value

    def validate_unique(self) -> None:
        """Names are checked across the rows by the service (and the formset); the old rows get replaced."""


class QualityRuleForm(forms.ModelForm):
    field_name = forms.CharField(
        required=False,
        label="Field",
        help_text="The field's name; blank for a rule on the whole dataset.",
        widget=forms.TextInput(attrs={"size": 14, "list": "aurum-field-names"}),
    )
    params = ObjectJSONField(
        required=False,
        help_text='JSON object, e.g. {"min": 0, "max": 100}.',
        widget=forms.TextInput(attrs={"size": 22}),
    )

    class Meta:
        model = QualityRule
        fields = ("kind", "severity", "threshold", "params", "description")
        widgets = {
            "threshold": forms.NumberInput(attrs={"style": "width: 5em"}),
            "description": forms.TextInput(attrs={"size": 22}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.field_id:
            self.initial.setdefault("field_name", self.instance.field.name)

    def clean_params(self) -> dict[str, Any]:
        value = self.cleaned_data.get("params")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('A JSON object, e.g. {"min": 0}.')
        return value


def _live_forms(formset: Any) -> list[Any]:
    """The rows a save sends to the service, in order: kept existing rows and filled-in new ones."""
    live = []
    for form in formset.forms:
        cleaned = getattr(form, "cleaned_data", None)
        if cleaned is None or cleaned.get("DELETE"):
            continue
        if form.instance.pk is None and not form.has_changed():
            continue
        live.append(form)
    return live


class _VersionContentInline(admin.TabularInline):
    """Fields and rules of a version: editable while the version is a draft, read-only after."""

    extra = 0
    service_key = ""  # the services' name for the list: "fields" or "quality_rules"
    form_field_names: dict[str, str] = {}  # service attribute → form field, where they differ

    def _version_admin(self) -> Any:
        return self.admin_site._registry[ContractVersion]

    def _editable(self, request: HttpRequest, obj: ContractVersion | None) -> bool:
        version_admin = self._version_admin()
        if obj is None:
            return version_admin.has_add_permission(request)
        return version_admin.has_change_permission(request, obj)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._version_admin().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(request, obj)

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        if not self._editable(request, obj):
            return 0
        return 3 if obj is None else 1

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        errors = getattr(request, _REFUSAL, None)
        if not errors or request.method != "POST":
            return formset
        rows: dict[int, dict[str, list[str]]] = {}
        for key, messages_ in errors.items():
            parts = key.split("/")
            if len(parts) >= 2 and parts[0] == self.service_key and parts[1].isdigit():
                attr = parts[2] if len(parts) > 2 else NON_FIELD_ERRORS
                rows.setdefault(int(parts[1]), {})[self.form_field_names.get(attr, attr)] = messages_
        if not rows:
            return formset

        class Refused(formset):  # type: ignore[valid-type, misc]
            def clean(self) -> None:
                super().clean()
                live = _live_forms(self)
                lost = []
                for index, attrs in rows.items():
                    form = live[index] if index < len(live) else None
                    for attr, texts in attrs.items():
                        if form is None:
                            lost += texts
                        elif attr in form.fields:
                            form.add_error(attr, texts)
                        else:
                            form.add_error(None, [f"{attr}: {text}" for text in texts])
                if lost:
                    raise ValidationError(lost)

        Refused.__name__ = formset.__name__
        return Refused


class ContractFieldInline(_VersionContentInline):
    model = ContractField
    form = ContractFieldForm
    service_key = "fields"
    verbose_name = "field"
    verbose_name_plural = "Schema fields"
    fields = ContractFieldForm.Meta.fields

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if self._editable(request, obj):
            return self.fields
        return tuple("allowed" if name == "allowed_values" else name for name in self.fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if self._editable(request, obj) else ("allowed",)

    @admin.display(description="Allowed values")
    def allowed(self, field: ContractField) -> str:
        return ", ".join(json.dumps(v) if not isinstance(v, str) else v for v in field.allowed_values or []) or "-"


class QualityRuleInline(_VersionContentInline):
    model = QualityRule
    form = QualityRuleForm
    service_key = "quality_rules"
    form_field_names = {"field": "field_name"}
    verbose_name = "quality rule"
    verbose_name_plural = "Quality rules"
    fields = ("field_name", "kind", "severity", "threshold", "params", "description")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if self._editable(request, obj):
            return self.fields
        return ("target", "kind", "severity", "threshold", "params", "description")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if self._editable(request, obj) else ("target",)

    @admin.display(description="Field")
    def target(self, rule: QualityRule) -> str:
        return rule.field.name if rule.field_id else "(whole dataset)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[QualityRule]:
        return super().get_queryset(request).select_related("field")


class ContractVersionForm(forms.ModelForm):
    class Meta:
        model = ContractVersion
        fields = (
            "contract", "version", "dataset", "notes", "sla_freshness", "sla_completeness", "sla_availability",
            "support",
        )  # fmt: skip
        labels = {
            "sla_freshness": "Freshness (SLA)",
            "sla_completeness": "Completeness % (SLA)",
            "sla_availability": "Availability % (SLA)",
        }
        widgets = {"notes": forms.Textarea(attrs={"rows": 3}), "support": forms.Textarea(attrs={"rows": 2})}

    EDITING_HELP = {  # shown on the form only: the read-only page keeps the model's own help
        "version": "Semantic version, e.g. 1.2.0. Raise the major version (2.0.0) for a breaking change.",
        "sla_freshness": "Maximum age of the newest record, e.g. 36:00:00 (36 hours) or 2 00:00:00 (two days).",
        "support": 'JSON list, e.g. [{"channel": "retail-data", "tool": "slack"}].',
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, text in self.EDITING_HELP.items():
            if name in self.fields:
                self.fields[name].help_text = text

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        contract = data.get("contract") or (self.instance.contract if self.instance.contract_id else None)
        if contract is not None:
            self.instance.tenant = contract.tenant  # the tenant check of TenantOwnedModel.clean needs it
            number = data.get("version")
            if number and contract.versions.filter(version=number).exclude(pk=self.instance.pk).exists():
                self.add_error("version", f"Contract “{contract.key}” already has a version {number}.")
        return data


LIFECYCLE_HELP = {
    "propose": (
        "Propose for approval",
        "Ask a second person to approve it. What is saved is frozen from now on: save your edits first.",
    ),
    "approve": ("Approve", "Approve exactly what was proposed (four eyes: never the proposer)."),
    "reject": ("Reject", "Send it back to draft. Say why: the comment is required."),
    "activate": ("Activate", "Make it the contract's active version and register its schema."),
    "deprecate": ("Deprecate", "Keep it readable but mark it as on its way out."),
    "retire": ("Retire", "Retire for good: a retired version is read-only forever."),
}
DANGER_ACTIONS = frozenset({"reject", "retire"})


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return ContractStatusChoices.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(ContractVersion)
class ContractVersionAdmin(_ServiceFormMixin, TenantScopedAdmin):
    view_roles = PORTAL_ROLES
    add_roles = EDITOR_ROLES
    change_roles = EDITOR_ROLES
    delete_roles = frozenset()  # versions are retired, never deleted
    form = ContractVersionForm
    inlines = [ContractFieldInline, QualityRuleInline]
    list_display = ("contract", "version", "status_label", "proposed_by", "decided_by", "activated_at")
    list_display_links = ("version",)
    list_filter = (StatusFilter, ("contract", admin.RelatedOnlyFieldListFilter))
    search_fields = ("contract__key", "contract__name", "version", "dataset")
    list_select_related = ("contract", "proposed_by", "decided_by")
    change_form_template = "admin/host/contractversion/change_form.html"

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj: ContractVersion) -> str:
        return _status_badge(obj.status, obj.get_status_display())

    def has_change_permission(self, request: HttpRequest, obj: ContractVersion | None = None) -> bool:
        """Only drafts change; from proposal on the content is frozen (retired: forever)."""
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: ContractVersion | None = None) -> Any:
        fieldsets: list[Any] = [
            (None, {"fields": ("contract", "version", "dataset", "notes")}),
            ("Service levels", {"fields": ("sla_freshness", "sla_completeness", "sla_availability", "support")}),
        ]
        if obj is not None and (obj.proposed_by_id or obj.decided_by_id or obj.activated_at):
            fieldsets.append(
                (
                    "Review",
                    {
                        "fields": (
                            ("proposed_by", "proposed_at"),
                            "breaking_change_confirmed",
                            ("decided_by", "decided_at"),
                            "decision_comment",
                            "activated_at",
                            "schema_version",
                        )
                    },
                )
            )
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: ContractVersion | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return (
            "contract", "proposed_by", "proposed_at", "breaking_change_confirmed", "decided_by",
            "decided_at", "decision_comment", "activated_at", "schema_version",
        )  # fmt: skip

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        contract_id = initial.get("contract")
        if contract_id and not initial.get("version"):
            contract = DataContract.objects.filter(pk=contract_id).first()
            if contract is not None:
                initial["version"] = _next_minor(contract)
        return initial

    # --- saving through the services -------------------------------------------------------------------
    def save_model(self, request: HttpRequest, obj: ContractVersion, form: Any, change: bool) -> None:
        """Nothing here: the version, its fields and rules are saved together in save_related."""

    def save_related(self, request: HttpRequest, form: Any, formsets: list[Any], change: bool) -> None:
        content: dict[str, list[dict[str, Any]]] = {"fields": [], "quality_rules": []}
        renamed: dict[str, str] = {}
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            for row in _live_forms(formset):
                if formset.model is ContractField:
                    spec = {name: row.cleaned_data.get(name) for name in ContractFieldForm.Meta.fields}
                    if row.instance.pk:
                        spec["extra"] = row.instance.extra
                        if row.initial.get("name") and row.initial["name"] != spec["name"]:
                            renamed[row.initial["name"]] = spec["name"]
                    content["fields"].append(spec)
                elif formset.model is QualityRule:
                    spec = {name: row.cleaned_data.get(name) for name in QualityRuleForm.Meta.fields}
                    spec["field"] = (row.cleaned_data.get("field_name") or "").strip() or None
                    if row.instance.pk:
                        spec["extra"] = row.instance.extra
                    content["quality_rules"].append(spec)
        for rule in content["quality_rules"]:  # a rule follows its field when the field is renamed
            if rule["field"] in renamed:
                rule["field"] = renamed[rule["field"]]
        data = form.cleaned_data
        attrs = {name: data.get(name) for name in ("dataset", "notes", "sla_freshness", "sla_completeness",
                                                   "sla_availability", "support")}  # fmt: skip
        attrs["support"] = attrs["support"] if attrs["support"] is not None else []
        try:
            with _through_service():
                if change:
                    saved = services.contract_version_update(
                        actor=request.user,
                        version=form.instance,
                        semver=data["version"],
                        fields=content["fields"],
                        quality_rules=content["quality_rules"],
                        **attrs,
                    )
                else:
                    saved = services.contract_version_create(
                        actor=request.user,
                        contract=data["contract"],
                        version=data["version"],
                        fields=content["fields"],
                        quality_rules=content["quality_rules"],
                        **attrs,
                    )
        except _ServiceRefused as refused:
            refused.errors = self._located(refused.errors, content)
            raise
        form.instance.pk, form.instance._state.adding = saved.pk, False

    def _located(self, errors: dict[str, list[str]], content: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
        """Add a summary naming the row ("Field 3 “email”") for each error of a field or rule row."""
        summary = []
        for key, texts in errors.items():
            parts = key.split("/")
            if len(parts) < 2 or parts[0] not in content or not parts[1].isdigit():
                continue
            index = int(parts[1])
            row = content[parts[0]][index] if index < len(content[parts[0]]) else {}
            if parts[0] == "fields":
                label = f"Field {index + 1} “{row.get('name') or '?'}”"
            else:
                label = f"Quality rule {index + 1} ({row.get('kind') or '?'} on {row.get('field') or 'the dataset'})"
            attr = f" — {parts[2]}" if len(parts) > 2 else ""
            summary += [f"{label}{attr}: {text}" for text in texts]
        if summary:
            errors = {**errors, NON_FIELD_ERRORS: [*errors.get(NON_FIELD_ERRORS, []), *summary]}
        return errors

    def form_errors_of_refusal(self, errors: dict[str, list[str]]) -> dict[str, list[str]]:
        return {key: texts for key, texts in errors.items() if "/" not in key}

    # --- the change page's panels ----------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/lifecycle/<slug:action>/",
                wrap(self.lifecycle_view),
                name="host_contractversion_lifecycle",
            ),
            path("<path:object_id>/odcs/", wrap(self.odcs_download_view), name="host_contractversion_odcs"),
            *super().get_urls(),
        ]

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: ContractVersion | None = None,
    ) -> Any:  # fmt: skip
        context["is_nav_sidebar_enabled"] = False  # the field table needs the page's width
        if obj is not None:
            context.update(self._panels(request, obj))
        elif add:
            context["field_names"] = []
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _panels(self, request: HttpRequest, version: ContractVersion) -> dict[str, Any]:
        contract = version.contract
        siblings = contract.versions.exclude(pk=version.pk).order_by("-major", "-minor", "-patch")
        base = _default_diff_base(version)
        against = request.GET.get("against") or (base.version if base else "")
        diff_error, changes, other_changes = "", [], []
        if against:
            try:
                changes = selectors.contract_version_diff(version=version, against=against)
            except ValidationError as exc:
                diff_error = " ".join(exc.messages)
            else:
                other_changes = _other_changes(siblings.get(version=against), version)
        proposal = version.transitions.filter(to_status=ContractStatusChoices.PROPOSED).order_by("-at", "-id").first()
        return {
            "version": version,
            "contract": contract,
            "lifecycle": self._lifecycle_forms(request, version, has_previous=siblings.exists()),
            "lifecycle_note": self._lifecycle_note(request, version),
            "diff": {
                "changes": changes,
                "other_changes": other_changes,
                "base": against,
                "base_status": next((v.get_status_display() for v in siblings if v.version == against), ""),
                "error": diff_error,
                "choices": [(v.version, v.get_status_display()) for v in siblings],
                "prominent": version.status == ContractStatusChoices.PROPOSED,
                "proposal_comment": proposal.comment if proposal else "",
            },
            "transitions": version.transitions.select_related("actor").order_by("at", "id"),
            "field_names": list(version.fields.values_list("name", flat=True)),
            "auditlog_url": reverse("admin:host_contractversion_auditlog", args=[version.pk]),
            "contract_url": reverse("admin:host_datacontract_change", args=[contract.pk]),
            "odcs_url": reverse("admin:host_contractversion_odcs", args=[version.pk]),
            "new_version_url": reverse("admin:host_datacontract_new_version", args=[contract.pk]),
            "may_add_version": self.has_add_permission(request),
            "next_version": _next_minor(contract),
        }

    def _may_act(self, request: HttpRequest, version: ContractVersion) -> bool:
        return self._allowed(request, self.change_roles, version)

    def _lifecycle_forms(self, request: HttpRequest, version: ContractVersion, has_previous: bool) -> list[Any]:
        if not self._may_act(request, version):
            return []
        forms_ = []
        for action in allowed_actions(version.status):
            if action in ("approve", "reject") and not self._may_decide(request, version):
                continue
            label, help_text = LIFECYCLE_HELP[action]
            if action == "activate":
                current = version.contract.versions.filter(status=ContractStatusChoices.ACTIVE).first()
                if current is not None:
                    help_text += f" The active version {current.version} becomes deprecated."
            forms_.append(
                {
                    "action": action,
                    "label": label,
                    "help": help_text,
                    "danger": action in DANGER_ACTIONS,
                    "comment_required": action == "reject",
                    "confirm_breaking": action == "propose" and has_previous,
                    "url": reverse("admin:host_contractversion_lifecycle", args=[version.pk, action]),
                }
            )
        return forms_

    def _may_decide(self, request: HttpRequest, version: ContractVersion) -> bool:
        user = request.user
        return version.proposed_by_id != user.pk and services.can_approve(user, version.contract)

    def _lifecycle_note(self, request: HttpRequest, version: ContractVersion) -> str:
        context = get_tenant_context(request)
        if not self._may_act(request, version):
            role = context.effective_role if context else None
            return f"Your role{f' ({role})' if role else ''} reads contract versions but does not move them."
        if version.status == ContractStatusChoices.PROPOSED and not self._may_decide(request, version):
            if version.proposed_by_id == request.user.pk:
                return (
                    "You proposed this version, so someone else approves or rejects it (four eyes): "
                    "a tenant admin or a holder of the approver right on this contract."
                )
            return "Approving needs the tenant admin role or the approver right on this contract."
        if version.status == ContractStatusChoices.RETIRED:
            return "This version is retired: read-only forever."
        return ""

    def lifecycle_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """POST: one lifecycle step through `services.LIFECYCLE_SERVICES[action]`; the outcome as a message."""
        version = self.get_object(request, unquote(object_id))
        if version is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = reverse("admin:host_contractversion_change", args=[version.pk])
        if action not in services.LIFECYCLE_SERVICES:
            raise Http404(f"No lifecycle action '{action}'.")
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        if not self._may_act(request, version):
            self.message_user(request, self._lifecycle_note(request, version), messages.ERROR)
            return HttpResponseRedirect(change_url)
        kwargs: dict[str, Any] = {"comment": request.POST.get("comment", "").strip()}
        if action == "propose":
            kwargs["confirm_breaking"] = bool(request.POST.get("confirm_breaking"))
        before = version.status
        try:
            moved = services.LIFECYCLE_SERVICES[action](actor=request.user, version=version, **kwargs)
        except (DomainError, ValidationError) as exc:
            self.message_user(request, _refusal_message(action, version, exc), messages.ERROR)
        else:
            self.message_user(
                request,
                f"{version.contract.key} {moved.version}: {before} → {moved.status}.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(change_url)

    def odcs_download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        version = self.get_object(request, unquote(object_id))
        if version is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        from apps.host.odcs.mapping import version_to_odcs
        from apps.host.odcs.parsing import dump

        text = dump(version_to_odcs(version))
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{version.contract.key}-{version.version}.odcs.yaml"'
        return response


VERSION_DIFF_ATTRS = (
    ("dataset", "dataset"),
    ("sla_freshness", "freshness SLA"),
    ("sla_completeness", "completeness SLA (%)"),
    ("sla_availability", "availability SLA (%)"),
    ("support", "support channels"),
)


def _other_changes(base: ContractVersion, version: ContractVersion) -> list[str]:
    """What the schema diff does not show: service levels and quality rules, in sentences."""

    def show(value: Any) -> str:
        if value in (None, "", [], {}):
            return "none"
        return json.dumps(value) if isinstance(value, list | dict) else str(value)

    def rules(row: ContractVersion) -> set[str]:
        described = set()
        for rule in row.quality_rules.select_related("field"):
            target = f"`{rule.field.name}`" if rule.field_id else "the dataset"
            details = [rule.severity]
            if rule.threshold is not None:
                details.append(f"threshold {rule.threshold:g}")
            if rule.params:
                details.append(json.dumps(rule.params, sort_keys=True))
            described.add(f"{rule.get_kind_display().lower()} on {target} ({', '.join(details)})")
        return described

    lines = [
        f"{label}: {show(getattr(base, name))} → {show(getattr(version, name))}"
        for name, label in VERSION_DIFF_ATTRS
        if getattr(base, name) != getattr(version, name)
    ]
    before, after = rules(base), rules(version)
    lines += [f"quality rule added: {rule}" for rule in sorted(after - before)]
    lines += [f"quality rule removed: {rule}" for rule in sorted(before - after)]
    return lines


def _default_diff_base(version: ContractVersion) -> ContractVersion | None:
    """What a version is compared with first: for a version on its way in (draft, proposed, approved), the
    active version it would replace when older; else the version just below it."""
    on_its_way = (ContractStatusChoices.DRAFT, ContractStatusChoices.PROPOSED, ContractStatusChoices.APPROVED)
    if version.status in on_its_way:
        current = version.contract.versions.filter(status=ContractStatusChoices.ACTIVE).exclude(pk=version.pk).first()
        if current is not None and current.semver < version.semver:
            return current
    return _previous_version(version)


def _previous_version(version: ContractVersion) -> ContractVersion | None:
    """The version just below this one (what contract_version_diff compares with by default)."""
    lower = (
        Q(major__lt=version.major)
        | Q(major=version.major, minor__lt=version.minor)
        | Q(major=version.major, minor=version.minor, patch__lt=version.patch)
    )
    siblings = ContractVersion.objects.filter(contract=version.contract).exclude(pk=version.pk)
    return siblings.filter(lower).order_by("-major", "-minor", "-patch").first()


def _refusal_message(action: str, version: ContractVersion, exc: Exception) -> str:
    """The service's reason, with each incompatibility of a breaking change on its own line."""
    head = f"{LIFECYCLE_HELP[action][0]} refused for {version.contract.key} {version.version}: "
    if isinstance(exc, DomainError):
        items = exc.extensions.get("incompatibilities") or []
        if items:
            return format_html(
                "{}{}<ul class='aurum-problems'>{}</ul>",
                head,
                exc.detail,
                format_html_join("", "<li>{} <code>{}</code></li>", ((i["message"], i["path"]) for i in items)),
            )
    return head + _refusal_text(exc)


# --- policies -------------------------------------------------------------------------------------------
POLICY_MANAGERS = TENANT_ADMIN_ROLES  # activating, retiring and revising (the API's admin scope)

FACT_EXAMPLES: dict[str, dict[str, Any]] = {
    "batch.accept": {"pass_rate": 97},
    "output.publish": {
        "pass_rate": 99.5,
        "publisher": "acme-steward",
        "approvers": ["acme-admin"],
        "lineage": {"kpi_values_traceable_to_raw": True},
    },
    "export.create": {"format": "csv", "rows": 10, "fields": {"email": "confidential"}},
    "data.retain": {},
}


def _action_label(action: str) -> str:
    kinds = ", ".join(str(PolicyKindChoices(kind).label).lower() for kind in ACTIONS[action])
    return f"{action} ({kinds})"


class PolicyScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("platform", "Platform-wide"), ("tenant", "Tenant"), ("contract", "One contract"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Policy]) -> QuerySet[Policy]:
        value = self.value()
        if value == "platform":
            return queryset.filter(tenant__isnull=True)
        if value == "tenant":
            return queryset.filter(tenant__isnull=False, contract__isnull=True)
        if value == "contract":
            return queryset.filter(contract__isnull=False)
        return queryset


class PolicyAdminForm(forms.ModelForm):
    parameters = ObjectJSONField(
        indent=2,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "class": "aurum-json"}),
        help_text="A JSON object; what it may contain depends on the kind (see the example).",
    )

    class Meta:
        model = Policy
        fields = ("tenant", "contract", "kind", "name", "description", "parameters")
        labels = {"tenant": "Tenant (blank: platform-wide)", "contract": "Contract (blank: the whole tenant)"}
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_parameters(self) -> Any:
        value = self.cleaned_data.get("parameters")
        if value is None:
            raise forms.ValidationError("Enter the parameters: a JSON object (start from the kind's example).")
        if not isinstance(value, dict):
            raise forms.ValidationError('Parameters are a JSON object, e.g. {"min_batch_pass_rate": 95}.')
        return value


class PolicyReviseForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Blank keeps the current name.")
    parameters = ObjectJSONField(indent=2, widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "class": "aurum-json"}))


class SimulateForm(forms.Form):
    action = forms.ChoiceField(choices=[(action, _action_label(action)) for action in ACTIONS])
    contract = forms.ModelChoiceField(
        queryset=DataContract.objects.none(),
        required=False,
        empty_label="(none: tenant and platform policies only)",
        help_text="A contract brings its own contract-scoped policies into play.",
    )
    facts = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "class": "aurum-json"}),
        help_text="What the caller knows, as a JSON object (a batch's pass rate, an export's format and fields…).",
    )

    def __init__(self, *args: Any, tenant: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["contract"].queryset = DataContract.objects.for_tenant(tenant).order_by("key")

    def clean_facts(self) -> dict[str, Any]:
        text = self.cleaned_data.get("facts", "").strip() or "{}"
        try:
            facts = json.loads(text)
        except ValueError as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
            raise forms.ValidationError(f"Not valid JSON{where}: {getattr(exc, 'msg', exc)}.") from None
        if not isinstance(facts, dict):
            raise forms.ValidationError('The facts are a JSON object, e.g. {"pass_rate": 97}.')
        return facts


@admin.register(Policy)
class PolicyAdmin(_ServiceFormMixin, TenantScopedAdmin):
    """The tenant's policies and the platform-wide ones (read-only to tenants), with a simulator."""

    view_roles = PORTAL_ROLES
    add_roles = EDITOR_ROLES
    change_roles = EDITOR_ROLES
    delete_roles = frozenset()  # policies are retired, never deleted
    form = PolicyAdminForm
    list_display = ("name", "kind", "version", "scope", "status_label", "activated_at")
    list_filter = ("kind", "status", PolicyScopeFilter)
    search_fields = ("name", "description")
    list_select_related = ("tenant", "contract")
    actions = ["activate_selected", "retire_selected"]
    change_form_template = "admin/host/policy/change_form.html"
    change_list_template = "admin/host/policy/change_list.html"

    # --- scoping: the tenant's own policies and the platform-wide ones ---------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet[Policy]:
        context = get_tenant_context(request)
        queryset = Policy.objects.select_related("tenant", "contract")
        if context is not None and context.tenant is not None:
            return queryset.for_tenant(context.tenant)
        if context is not None and context.is_superuser:
            return queryset
        return queryset.none()

    def has_view_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        if obj is not None and obj.tenant_id is None:  # platform-wide: every portal member of a tenant reads it
            context = get_tenant_context(request)
            return context is not None and (
                context.is_superuser or (context.tenant is not None and context.has_role(self.view_roles))
            )
        return super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        if obj is not None:
            if obj.tenant_id is None and not request.user.is_superuser:
                return False
            if obj.status != PolicyStatusChoices.DRAFT:
                return False  # in force or retired: changed by a new version
        return super().has_change_permission(request, obj)

    def has_manage_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        """Activate, retire, revise: tenant admins for their tenant's policies, superusers for all."""
        if request.user.is_superuser:
            return True
        if obj is not None and obj.tenant_id is None:
            return False
        return self._allowed(request, POLICY_MANAGERS, obj)

    # --- columns --------------------------------------------------------------------------------------
    @admin.display(description="Scope")
    def scope(self, obj: Policy) -> str:
        return obj.scope_label

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj: Policy) -> str:
        return _status_badge(obj.status, obj.get_status_display())

    # --- the form ---------------------------------------------------------------------------------------
    def get_fields(self, request: HttpRequest, obj: Policy | None = None) -> tuple[str, ...]:
        if obj is None:
            scope = ("tenant", "contract") if request.user.is_superuser else ("contract",)
            return ("kind", "name", *scope, "description", "parameters")
        return (
            "scope", "kind", "version", "status_label", "name", "description", "parameters", "created_by",
            "activated_at", "retired_at",
        )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Policy | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("scope", "kind", "version", "status_label", "created_by", "activated_at", "retired_at")

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        context = get_tenant_context(request)
        if context is not None and context.tenant is not None:
            initial.setdefault("tenant", context.tenant.pk)
        kind = initial.get("kind")
        if kind in KINDS and "parameters" not in initial:
            initial["parameters"] = KINDS[kind].example
        return initial

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "tenant" and field is not None:
            field.required = False
        return field

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name in ("tenant", "contract") and field is not None:  # a scope is picked, not edited here
            wrapper = field.widget
            wrapper.can_add_related = wrapper.can_change_related = wrapper.can_view_related = False
        return field

    def save_model(self, request: HttpRequest, obj: Policy, form: Any, change: bool) -> None:
        data = form.cleaned_data
        with _through_service():
            if change:
                services.policy_update(
                    actor=request.user,
                    policy=obj,
                    name=data["name"],
                    parameters=data["parameters"],
                    description=data.get("description", ""),
                )
                return
            context = get_tenant_context(request)
            tenant = data.get("tenant") if request.user.is_superuser else (context.tenant if context else None)
            created = services.policy_create(
                actor=request.user,
                kind=data["kind"],
                name=data["name"],
                parameters=data["parameters"],
                tenant=tenant,
                contract=data.get("contract"),
                description=data.get("description", ""),
            )
        obj.pk, obj._state.adding = created.pk, False

    # --- the change page ----------------------------------------------------------------------------------
    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: Policy | None = None,
    ) -> Any:  # fmt: skip
        kinds = [
            {"kind": kind, "label": PolicyKindChoices(kind).label, "summary": spec.summary,
             "example": json.dumps(spec.example, indent=2)}
            for kind, spec in KINDS.items()
            if obj is None or kind == obj.kind
        ]  # fmt: skip
        context["kind_examples"] = kinds
        if obj is not None:
            context.update(self._policy_panels(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _policy_panels(self, request: HttpRequest, policy: Policy) -> dict[str, Any]:
        tenant_context = get_tenant_context(request)
        tenant = policy.tenant or (tenant_context.tenant if tenant_context else None)
        may_manage = self.has_manage_permission(request, policy)
        panels: dict[str, Any] = {
            "policy": policy,
            "may_manage": may_manage,
            "activate_url": reverse("admin:host_policy_activate", args=[policy.pk]),
            "retire_url": reverse("admin:host_policy_retire", args=[policy.pk]),
            "revise_url": reverse("admin:host_policy_revise", args=[policy.pk]),
            "auditlog_url": reverse("admin:host_policy_auditlog", args=[policy.pk]),
            "simulate_url": reverse("admin:host_policy_simulate"),
            "versions": Policy.objects.filter(lineage=policy.lineage).exclude(pk=policy.pk).order_by("-version"),
            "deciding_tenant": tenant,
        }
        if policy.tenant_id is None and not request.user.is_superuser:
            panels["read_only_note"] = "Platform-wide policy: set by the platform operators, read-only for tenants."
        elif not may_manage:
            panels["read_only_note"] = "Activating, retiring and revising policies is for tenant admins."
        if tenant is None:
            return panels
        resolved = effective_policies(tenant=tenant, contract=policy.contract)
        rows = []
        for kind, entry in resolved.items():
            rows.append(
                {
                    "kind": PolicyKindChoices(kind).label,
                    "this_kind": kind == policy.kind,
                    "deciding": entry.policy,
                    "overridden": entry.overridden,
                }
            )
        rows.sort(key=lambda row: not row["this_kind"])
        mine = resolved[policy.kind]
        if mine.policy is not None and mine.policy.pk == policy.pk:
            verdict = "This policy decides."
        elif any(p.pk == policy.pk for p in mine.overridden):
            verdict = f"This policy is in force but overridden by “{mine.policy}” ({mine.policy.scope_label})."
        elif policy.status == PolicyStatusChoices.DRAFT:
            verdict = "This policy is a draft: it decides nothing until it is activated."
        else:
            verdict = f"This policy is {policy.status}: it decides nothing."
        panels.update(deciding_rows=rows, deciding_verdict=verdict)
        return panels

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("simulate/", wrap(self.simulate_view), name="host_policy_simulate"),
            path("<path:object_id>/activate/", wrap(self.activate_view), name="host_policy_activate"),
            path("<path:object_id>/retire/", wrap(self.retire_view), name="host_policy_retire"),
            path("<path:object_id>/revise/", wrap(self.revise_view), name="host_policy_revise"),
            *super().get_urls(),
        ]

    def _managed_policy(self, request: HttpRequest, object_id: str) -> Policy | HttpResponse:
        policy = self.get_object(request, unquote(object_id))
        if policy is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_manage_permission(request, policy):
            self.message_user(
                request,
                "Platform-wide policies are read-only for tenants."
                if policy.tenant_id is None
                else "Activating, retiring and revising policies is for tenant admins.",
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:host_policy_change", args=[policy.pk]))
        return policy

    def _status_step(self, request: HttpRequest, object_id: str, service: Any, verb: str) -> HttpResponse:
        policy = self._managed_policy(request, object_id)
        if isinstance(policy, HttpResponse):
            return policy
        if request.method == "POST":
            try:
                moved = service(actor=request.user, policy=policy)
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"Not {verb}: {_refusal_text(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"“{moved}” {verb}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:host_policy_change", args=[policy.pk]))

    def activate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._status_step(request, object_id, services.policy_activate, "activated")

    def retire_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._status_step(request, object_id, services.policy_retire, "retired")

    def revise_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A new draft version with edited parameters (policy_revise); the current one stays in force."""
        policy = self._managed_policy(request, object_id)
        if isinstance(policy, HttpResponse):
            return policy
        if request.method == "POST":
            form = PolicyReviseForm(request.POST)
            if form.is_valid():
                try:
                    draft = services.policy_revise(
                        actor=request.user,
                        policy=policy,
                        parameters=form.cleaned_data["parameters"],
                        name=form.cleaned_data["name"] or None,
                    )
                except ValidationError as exc:
                    for key, texts in _error_dict(exc).items():
                        form.add_error(key if key in form.fields else None, texts)
                except DomainError as exc:
                    form.add_error(None, exc.detail)
                else:
                    self.message_user(
                        request,
                        f"Draft “{draft}” created; “{policy}” stays in force until you activate the draft.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:host_policy_change", args=[draft.pk]))
        else:
            form = PolicyReviseForm(initial={"parameters": policy.parameters})
        spec = KINDS[policy.kind]
        return TemplateResponse(
            request,
            "admin/host/policy/revise.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"New version of “{policy.name}”",
                "policy": policy,
                "form": form,
                "kind_summary": spec.summary,
                "kind_example": json.dumps(spec.example, indent=2),
            },
        )

    @admin.action(description="Activate the selected draft policies", permissions=["manage"])
    def activate_selected(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        self._bulk(request, queryset, services.policy_activate, "activated")

    @admin.action(description="Retire the selected policies", permissions=["manage"])
    def retire_selected(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        self._bulk(request, queryset, services.policy_retire, "retired")

    def _bulk(self, request: HttpRequest, queryset: QuerySet[Policy], service: Any, verb: str) -> None:
        done = 0
        for policy in queryset:
            if not self.has_manage_permission(request, policy):
                self.message_user(request, f"“{policy}”: platform-wide, read-only for tenants.", messages.ERROR)
                continue
            try:
                service(actor=request.user, policy=policy)
                done += 1
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"“{policy}”: {_refusal_text(exc)}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} polic{'y' if done == 1 else 'ies'} {verb}.", messages.SUCCESS)

    # --- simulate ---------------------------------------------------------------------------------------
    def simulate_view(self, request: HttpRequest) -> HttpResponse:
        """What would the policies decide? Evaluation only: nothing is written."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = get_tenant_context(request)
        tenant = context.tenant if context is not None else None
        decision = None
        data = request.POST if request.method == "POST" else None
        action = (data or request.GET).get("action") or next(iter(ACTIONS))
        initial = {"action": action, "facts": json.dumps(FACT_EXAMPLES.get(action, {}), indent=2)}
        form = SimulateForm(data, initial=initial, tenant=tenant)
        if data is not None and form.is_valid():
            if tenant is None:
                form.add_error(None, "Pick a tenant in the tenant switcher: policies are evaluated for one tenant.")
            else:
                subject = PolicySubject(tenant, form.cleaned_data["contract"], form.cleaned_data["facts"])
                try:
                    decision = evaluate(form.cleaned_data["action"], subject)
                except (TypeError, ValueError, KeyError, AttributeError) as exc:
                    form.add_error("facts", f"These facts do not fit the action: {exc!r}.")
        reasons = []
        if decision is not None:
            for reason in decision.reasons:
                reasons.append(
                    {
                        "reason": reason,
                        "kind": PolicyKindChoices(reason.kind).label,
                        "url": reverse("admin:host_policy_change", args=[reason.policy_id]) if reason.policy_id else "",
                    }
                )
        return TemplateResponse(
            request,
            "admin/host/policy/simulate.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Simulate a policy decision",
                "form": form,
                "tenant": tenant,
                "decision": decision,
                "reasons": reasons,
                "treatments": json.dumps(decision.treatments, indent=2, sort_keys=True) if decision else "",
                "examples": {name: json.dumps(facts, indent=2) for name, facts in FACT_EXAMPLES.items()},
            },
        )
