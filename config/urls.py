"""URL map: portal (admin), API v1 with its schema and docs, health probes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views import defaults
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.kernel.api.problems import problem_json_response
from apps.kernel.api.views import api_not_found

api_v1 = [
    # Consumers' reads first: Django tries the patterns in order, and the catalog, KPI values and
    # exports are the hot paths (a hundred patterns tried cost ~0.5 ms a request). No two apps
    # share a path, so the order changes nothing else.
    path("", include("apps.consumption.api.urls")),
    path("", include("apps.host.api.urls")),
    path("", include("apps.access.api.urls")),
    path("", include("apps.runtime.api.urls")),
    path("", include("apps.utilities.api.urls")),
    path("", include("apps.compute.api.urls")),
    path("", include("apps.storage.api.urls")),
    path("", include("apps.trust.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    re_path(r"^.*$", api_not_found, name="api-not-found"),  # last: anything else is a problem 404
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("", include("apps.runtime.urls")),
    path("", include("apps.access.urls")),
]


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return problem_json_response(request, 404, detail="No API resource at this address.")
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return problem_json_response(request, 500, detail="An unexpected error occurred; it has been logged.")
    return defaults.server_error(request)


def handler400(request: HttpRequest, exception: Any) -> HttpResponse:
    if _is_api(request):
        return problem_json_response(request, 400, detail=str(exception) or "Bad request.")
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Any) -> HttpResponse:
    if _is_api(request):
        return problem_json_response(request, 403, detail="Forbidden.")
    return defaults.permission_denied(request, exception)
