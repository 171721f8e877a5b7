"""Consumption's API routes: each module package contributes its own urlpatterns."""

from apps.consumption.catalog.api.urls import urlpatterns as catalog_urlpatterns
from apps.consumption.exports.api.urls import urlpatterns as exports_urlpatterns
from apps.consumption.kpis.api.urls import urlpatterns as kpis_urlpatterns
from apps.consumption.webhooks.api.urls import urlpatterns as webhooks_urlpatterns

urlpatterns: list = []
urlpatterns += webhooks_urlpatterns
urlpatterns += catalog_urlpatterns
urlpatterns += exports_urlpatterns
urlpatterns += kpis_urlpatterns
