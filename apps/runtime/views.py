"""Health probes and the portal's Modules page."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.runtime.events import subscriptions
from apps.runtime.health import READINESS_CHECKS, run_checks
from apps.runtime.registry import module_registry


@never_cache
@require_GET
def health_live(request: HttpRequest) -> JsonResponse:
    """The process is up and serving; says nothing about dependencies."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def health_ready(request: HttpRequest) -> JsonResponse:
    """Ready to serve traffic: database, cache and (when configured) broker answer."""
    ok, checks = run_checks(READINESS_CHECKS)
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


@never_cache
def modules_page(request: HttpRequest) -> HttpResponse:
    """Categories, modules, interfaces, dependencies and live health, for stewards and operators."""
    if not admin.site.has_permission(request):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    context = {
        **admin.site.each_context(request),
        "title": "Modules",
        "entries": module_registry(),
        "subscriptions": subscriptions(),
    }
    return TemplateResponse(request, "runtime/modules.html", context)
