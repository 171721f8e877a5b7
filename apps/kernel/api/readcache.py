"""A short-lived server-side cache of read responses, per tenant, dropped by the tenant's changes.

Catalog lists and KPI values are read far more often than they change, and building one costs
tens of milliseconds of SQL and serialization. `CachedReadMixin` keeps the rendered body of a
successful GET and serves it again while both hold:

- the tenant's *change generation* is still the one it was built under. Every domain event of the
  tenant moves it once its transaction commits (`apps.runtime.events.publish_event` calls
  `tenant_changed`): a new batch, a computed KPI, a publication, a product edit;
- it is younger than `AURUM_API_READ_CACHE_SECONDS` (default 10; 0 turns the cache off).
  Health (freshness, `age_seconds`) moves with the clock, not with events; an `Age` header
  says how old a served body is (RFC 9111).

Authentication, permissions and throttling run on every request, before the cache is asked. The
key holds the tenant, the audience (`read_cache_audience`: what this reader may see), the host,
path, query string and media type.

Bodies are kept in the process (`READS`, up to `AURUM_API_READ_CACHE_MB`, default 32, per process):
each worker builds a body once, and serving it again costs no round trip and no unpickling. The
generations live in the shared cache (Redis with `AURUM_CACHE_URL`; without it, per process), read
in the same round trip as the token check's (see `apps.access.tokencache`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.http import HttpResponse

from apps.kernel.generations import cache_entry, cached_entry, generation_move, generations_read
from apps.kernel.localcache import LocalStore

PREFIX = "aurum:read"
READS = LocalStore(max_bytes=int(getattr(settings, "AURUM_API_READ_CACHE_MB", 32)) * 1024 * 1024)


def generation_key(tenant_id: Any) -> str:
    return f"{PREFIX}:generation:{tenant_id}"


def generations_memo(request: Any) -> dict[str, Any]:
    """The request's generation counters read so far (see `apps.kernel.generations`)."""
    django_request = getattr(request, "_request", request)
    memo = getattr(django_request, "aurum_generations", None)
    if memo is None:
        memo = django_request.aurum_generations = {}
    return memo


def tenant_changed(tenant_id: Any) -> None:
    """Drop every cached read of the tenant (by moving its generation on); never raises."""
    generation_move(generation_key(tenant_id))


def _seconds() -> int:
    return int(getattr(settings, "AURUM_API_READ_CACHE_SECONDS", 10))


class CachedReadMixin:
    """For DRF views: `return self.cached_read(request, tenant_id, build)` in a GET handler."""

    read_cache_scope = ""

    def read_cache_audience(self) -> str:
        return ""

    def cached_read(self, request: Any, tenant_id: Any, build: Any) -> Any:
        seconds = _seconds()
        if seconds <= 0 or request.method not in ("GET", "HEAD"):
            return build()
        raw = "|".join((request.get_host(), request.path, request.META.get("QUERY_STRING", ""),
                        getattr(request, "accepted_media_type", "") or ""))  # fmt: skip
        key = (
            f"{PREFIX}:{self.read_cache_scope}:{tenant_id}:{self.read_cache_audience()}:"
            + hashlib.sha256(raw.encode()).hexdigest()
        )
        generations = generations_read([generation_key(tenant_id)], generations_memo(request))
        if generations is None:  # the cache is unreachable: build every response
            return build()
        generation = generations[generation_key(tenant_id)]
        entry, now = cached_entry(READS, key, generation, seconds)
        if entry is not None:
            return self._replay(entry, now)
        response = build()
        self._read_cache_pending = (key, generation, now)
        return response

    def _replay(self, entry: dict[str, Any], now: float) -> HttpResponse:
        if entry.get("view_state"):
            for name, value in entry["view_state"].items():
                setattr(self, name, value)
        response = HttpResponse(entry["body"], content_type=entry["content_type"])
        response["Age"] = str(int(now - entry["at"]))
        return response

    def read_cache_view_state(self) -> dict[str, Any]:
        """Attributes of the view a handler sets and `finalize_response` reads (e.g. Cache-Control)."""
        return {}

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        pending = getattr(self, "_read_cache_pending", None)
        if pending is not None and response.status_code == 200 and hasattr(response, "render"):
            self._read_cache_pending = None
            key, generation, at = pending
            response.render()
            cache_entry(READS, key, generation, at, len(response.content) + len(key), body=response.content,
                        content_type=response["Content-Type"], view_state=self.read_cache_view_state())  # fmt: skip
        return response
