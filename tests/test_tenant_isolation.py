"""Tenant isolation, proved generically over the URL conf and the admin registry.

Nothing here names an endpoint or a model admin: the tests walk every route under
/api/v1/ and every registered ModelAdmin, build one row of each tenant-owned model in
tenant B with `tests.factories.TENANT_FACTORIES`, and act as a tenant admin of tenant A.
Another tenant's rows must never be listed, and reading or changing one must answer
"not found" (404 in the API, a redirect to the index or 404 in the portal), never 403
and never success. A new endpoint or admin is covered without new test code; a new
tenant-owned model without a factory, or an admin or route nobody classified, fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from apps.host.models import Tenant
from apps.kernel.roles import RoleChoices
from tests.factories import PLATFORM_FACTORIES, TENANT_FACTORIES

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
PROBLEM_JSON = "application/problem+json"

# API routes that expose no model rows, by URL name, with the reason they are safe to skip.
API_ROUTES_WITHOUT_MODEL: dict[str, str] = {
    "module-list": "the platform's module registry: static module metadata and health, no tenant rows",
    "schema": "the OpenAPI document: describes endpoints, holds no data",
    "swagger-ui": "Swagger UI page for the schema, no data",
    "redoc": "Redoc page for the schema, no data",
    "api-not-found": "the catch-all that answers unknown API paths with a problem 404, no data",
}

# Third-party admins, by app label: platform tooling that only superusers (or users holding
# Django's global model permissions) may use; a tenant admin must be refused.
THIRD_PARTY_ADMIN_APPS: dict[str, str] = {
    "auth": "accounts and groups span every tenant",
    "auditlog": "the field-level audit log of every tenant",
    "django_celery_beat": "platform schedules",
    "guardian": "object permissions of every tenant",
}


def tenant_owned(model: type[models.Model]) -> bool:
    """A row that belongs to one tenant: a tenant itself, a `tenant` field, or a TenantQuerySet."""
    if model is Tenant or model in TENANT_FACTORIES:
        return True
    if any(field.name == "tenant" for field in model._meta.get_fields()):
        return True
    return hasattr(model._default_manager.all(), "for_tenant")


def snapshot(row: models.Model) -> dict[str, Any] | None:
    return type(row)._base_manager.filter(pk=row.pk).values().first()


# --- the API ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiRoute:
    route: str  # the concatenated pattern, for messages
    name: str | None  # namespaced URL name
    pattern: URLPattern
    callback: Any

    @property
    def id(self) -> str:
        return self.name or self.route

    @property
    def viewset(self) -> Any:
        return getattr(self.callback, "cls", None)

    @property
    def actions(self) -> dict[str, str]:
        return dict(getattr(self.callback, "actions", None) or {})

    @property
    def is_router_route(self) -> bool:
        return bool(self.actions)

    @property
    def model(self) -> type[models.Model] | None:
        queryset = getattr(self.viewset, "queryset", None)
        return getattr(queryset, "model", None)

    @property
    def lookup_field(self) -> str:
        return getattr(self.viewset, "lookup_field", "pk")

    @property
    def lookup_url_kwarg(self) -> str:
        return getattr(self.viewset, "lookup_url_kwarg", None) or self.lookup_field

    @property
    def is_detail(self) -> bool:
        return self.lookup_url_kwarg in self.pattern.pattern.regex.groupindex

    def allowed_methods(self) -> dict[str, str]:
        """method → action, for the methods the viewset really answers."""
        allowed = {m.lower() for m in self.viewset.http_method_names}
        return {method: action for method, action in self.actions.items() if method.lower() in allowed}

    def url(self, **kwargs: Any) -> str:
        assert self.name, f"{self.route}: give the route a name so the isolation tests can reverse it"
        url = reverse(self.name, kwargs=kwargs or None)
        assert resolve(url).func is self.callback, (
            f"{self.route}: reversing {self.name!r} leads to another view; URL names must be unique under {API_PREFIX}"
        )
        return url


def _walk(patterns: list[Any], prefix: str = "", namespace: str | None = None) -> Iterator[tuple[str, Any, str | None]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part) or None
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield prefix + str(entry.pattern), entry, name


def api_routes() -> list[ApiRoute]:
    routes = []
    for route, pattern, name in _walk(get_resolver().url_patterns):
        if route.startswith(API_PREFIX):
            routes.append(ApiRoute(route=route, name=name, pattern=pattern, callback=pattern.callback))
    return routes


ROUTES = api_routes()
MODEL_ROUTES = [r for r in ROUTES if r.is_router_route and r.model is not None]
TENANT_LIST_ROUTES = [r for r in MODEL_ROUTES if not r.is_detail and "get" in r.actions and tenant_owned(r.model)]
TENANT_DETAIL_ROUTES = [r for r in MODEL_ROUTES if r.is_detail and tenant_owned(r.model)]


def test_the_walk_finds_the_api():
    """Guards the walk itself: if it found nothing, every parametrized test below would vanish."""
    assert TENANT_LIST_ROUTES, "no tenant-owned list route found under /api/v1/: is the URL walk broken?"
    assert TENANT_DETAIL_ROUTES, "no tenant-owned detail route found under /api/v1/: is the URL walk broken?"
    assert {r.model for r in TENANT_LIST_ROUTES} >= {Tenant}


def test_every_api_route_is_classified():
    problems = []
    for route in ROUTES:
        if route.name in API_ROUTES_WITHOUT_MODEL:
            continue
        if route.model is None:
            problems.append(
                f"{route.route} ({route.name}): no viewset with a `queryset` model; give it one, or add its URL "
                f"name to API_ROUTES_WITHOUT_MODEL in {__name__} with the reason it exposes no tenant data"
            )
        elif not tenant_owned(route.model) and route.model not in PLATFORM_FACTORIES:
            problems.append(
                f"{route.route}: model {route.model._meta.label} is neither tenant-owned nor in "
                "tests.factories.PLATFORM_FACTORIES; classify it"
            )
    assert not problems, "\n".join(problems)


def test_every_tenant_owned_model_in_the_api_has_a_factory():
    missing = sorted(
        {r.model._meta.label for r in MODEL_ROUTES if tenant_owned(r.model) and r.model not in TENANT_FACTORIES}
    )
    assert not missing, (
        f"tenant-owned model(s) {', '.join(missing)} are exposed by the API but have no factory: add one to "
        "tests.factories.TENANT_FACTORIES (model → lambda tenant: <a row owned by that tenant>)"
    )


def _factory(model: type[models.Model]) -> Callable[[Any], Any]:
    if model not in TENANT_FACTORIES:
        pytest.fail(f"add a factory for {model._meta.label} to tests.factories.TENANT_FACTORIES", pytrace=False)
    return TENANT_FACTORIES[model]


def _listed_rows(body: Any) -> list[Any]:
    if isinstance(body, dict) and "results" in body:
        return body["results"]
    assert isinstance(body, list), f"a list endpoint should answer a list or a paginated page, got {body!r:.200}"
    return body


def _identities(route: ApiRoute, row: models.Model) -> set[str]:
    return {str(row.pk), str(getattr(row, route.lookup_field, row.pk))}


def _item_identities(route: ApiRoute, item: Any) -> set[str]:
    keys = ("id", "pk", route.lookup_field)
    return {str(item[key]) for key in keys if isinstance(item, dict) and key in item}


@pytest.mark.parametrize("route", TENANT_LIST_ROUTES, ids=lambda r: r.id)
def test_a_list_never_shows_another_tenants_rows(route, tenant_a, tenant_b, token_client):
    factory = _factory(route.model)
    theirs = factory(tenant_b)
    ours = factory(tenant_a)
    client = token_client(tenant_a, RoleChoices.ADMIN)

    response = client.get(route.url(), {"page_size": 500})

    assert response.status_code == 200, response.content[:500]
    items = _listed_rows(response.json())
    listed = set().union(*(_item_identities(route, item) for item in items)) if items else set()
    assert listed & _identities(route, ours), (
        f"{route.route}: the tenant's own row is not listed (or its items carry no 'id'/'{route.lookup_field}'), "
        "so this test could not see a leak"
    )
    assert not listed & _identities(route, theirs), f"{route.route} lists a row of another tenant"


@pytest.mark.parametrize("route", TENANT_DETAIL_ROUTES, ids=lambda r: r.id)
def test_another_tenants_row_is_not_found(route, tenant_a, tenant_b, token_client):
    theirs = _factory(route.model)(tenant_b)
    before = snapshot(theirs)
    client = token_client(tenant_a, RoleChoices.ADMIN)
    url = route.url(**{route.lookup_url_kwarg: getattr(theirs, route.lookup_field)})
    methods = route.allowed_methods()
    assert methods, f"{route.route}: the viewset answers none of its routed methods"

    for method, action in sorted(methods.items()):
        body = {} if method in ("post", "put", "patch") else None
        response = getattr(client, method)(url, body)
        assert response.status_code == 404, (
            f"{method.upper()} {url} ({action}) on another tenant's row answered {response.status_code}, "
            f"not 404: {response.content[:300]!r}"
        )
        assert response["Content-Type"] == PROBLEM_JSON, f"{method.upper()} {url}: {response['Content-Type']}"
        assert snapshot(theirs) == before, f"{method.upper()} {url} ({action}) changed another tenant's row"


# --- the portal (Django admin) ---------------------------------------------------------------------

ADMINS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
TENANT_ADMINS = [(m, a) for m, a in ADMINS if m in TENANT_FACTORIES]
PLATFORM_ADMINS = [
    (m, a)
    for m, a in ADMINS
    if m not in TENANT_FACTORIES and (m in PLATFORM_FACTORIES or m._meta.app_label in THIRD_PARTY_ADMIN_APPS)
]
UNCLASSIFIED_ADMINS = [(m, a) for m, a in ADMINS if (m, a) not in TENANT_ADMINS and (m, a) not in PLATFORM_ADMINS]


def _param(model: type[models.Model], model_admin: admin.ModelAdmin) -> Any:
    return pytest.param(model, model_admin, id=model._meta.label)


def admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def tenant_admin_client(tenant_a, member) -> Client:
    """Signed in to the portal as a tenant admin (not a superuser, not staff) of tenant A."""
    client = Client()
    client.force_login(member(tenant_a, RoleChoices.ADMIN, username="tenant-a-admin"))
    return client


def test_every_registered_admin_is_classified():
    assert TENANT_ADMINS, "no tenant-scoped admin found: is the admin registry empty?"
    unclassified = [m._meta.label for m, _ in UNCLASSIFIED_ADMINS]
    assert not unclassified, (
        f"admin(s) for {', '.join(unclassified)} are neither tenant-scoped nor platform-only: add a factory to "
        "tests.factories.TENANT_FACTORIES (tenant-owned) or PLATFORM_FACTORIES (platform-wide), or, for a "
        f"third-party app, its label to THIRD_PARTY_ADMIN_APPS in {__name__}"
    )


def test_tenant_owned_models_are_not_classified_as_platform():
    wrong = [m._meta.label for m in PLATFORM_FACTORIES if tenant_owned(m)]
    assert not wrong, f"{', '.join(wrong)} belong to a tenant: move them to TENANT_FACTORIES"


def _not_found(response: Any) -> bool:
    """Django admin answers an object outside get_queryset with a redirect to the index (or 404)."""
    return response.status_code in (302, 404)


@pytest.mark.parametrize(("model", "model_admin"), [_param(*entry) for entry in TENANT_ADMINS])
def test_the_portal_never_shows_another_tenants_rows(model, model_admin, tenant_a, tenant_b, tenant_admin_client):
    theirs = TENANT_FACTORIES[model](tenant_b)
    ours = TENANT_FACTORIES[model](tenant_a)
    before = snapshot(theirs)
    their_change_url = admin_url(model, "change", quote(theirs.pk))

    response = tenant_admin_client.get(admin_url(model, "changelist"))

    assert response.status_code == 200, f"{model._meta.label} changelist: {response.status_code}"
    shown = {row.pk for row in response.context["cl"].result_list}
    assert ours.pk in shown, f"{model._meta.label}: the tenant's own row is missing, so a leak could go unseen"
    assert theirs.pk not in shown, f"{model._meta.label} changelist lists a row of another tenant"
    assert their_change_url not in response.content.decode()

    response = tenant_admin_client.get(their_change_url)
    assert _not_found(response), f"{their_change_url} answered {response.status_code}"
    assert str(theirs) not in response.content.decode()
    if response.status_code == 302:
        assert response["Location"] == reverse("admin:index")

    pages = [admin_url(model, "history", quote(theirs.pk)), admin_url(model, "delete", quote(theirs.pk))]
    if hasattr(model_admin, "auditlog_history_view"):
        pages.append(admin_url(model, "auditlog", quote(theirs.pk)))
    for url in pages:
        response = tenant_admin_client.get(url)
        assert response.status_code in (302, 403, 404), f"{url} answered {response.status_code}"
        assert str(theirs) not in response.content.decode(), f"{url} shows another tenant's row"

    # Writes through every door of the admin: the change form, the delete confirmation, every action.
    tenant_admin_client.post(their_change_url, {})
    tenant_admin_client.post(admin_url(model, "delete", quote(theirs.pk)), {"post": "yes"})
    response = tenant_admin_client.get(admin_url(model, "changelist"))
    action_form = response.context.get("action_form")
    actions = [name for name, _ in action_form.fields["action"].choices if name] if action_form else []
    for action in actions:
        tenant_admin_client.post(
            admin_url(model, "changelist"),
            {"action": action, "_selected_action": [str(theirs.pk)], "index": 0, "post": "yes"},
        )
    assert snapshot(theirs) == before, f"a tenant admin of A changed or deleted a {model._meta.label} of B"


@pytest.mark.parametrize(("model", "model_admin"), [_param(*entry) for entry in PLATFORM_ADMINS])
def test_platform_admins_refuse_a_tenant_admin(model, model_admin, tenant_admin_client, superuser):
    row = PLATFORM_FACTORIES[model]() if model in PLATFORM_FACTORIES else None
    operator = Client()
    operator.force_login(superuser)
    assert operator.get(admin_url(model, "changelist")).status_code == 200, "the page itself must work"

    response = tenant_admin_client.get(admin_url(model, "changelist"))

    assert response.status_code in (302, 403), f"{model._meta.label} changelist answered {response.status_code}"
    assert tenant_admin_client.get(admin_url(model, "add")).status_code in (302, 403)
    if row is not None:
        response = tenant_admin_client.get(admin_url(model, "change", quote(row.pk)))
        assert response.status_code in (302, 403, 404)
        assert snapshot(row) is not None


def test_the_portal_index_offers_a_tenant_admin_only_tenant_scoped_models(tenant_admin_client):
    response = tenant_admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    offered = {entry["model"] for app in response.context["app_list"] for entry in app["models"]}
    assert offered, "the index offers nothing: the tenant admin should see the tenant's models"
    platform = sorted(m._meta.label for m in offered if m not in TENANT_FACTORIES)
    assert not platform, (
        f"the index offers a tenant admin models not classified as tenant-scoped (TENANT_FACTORIES): {', '.join(platform)}"
    )
