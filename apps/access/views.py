"""Portal views of the access app."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.access.context import SESSION_TENANT_KEY
from apps.host.selectors import tenant_get
from apps.kernel.context import get_tenant_context


@require_POST
def switch_tenant(request: HttpRequest) -> HttpResponseRedirect | HttpResponseBadRequest:
    """Choose the tenant the portal shows; only tenants the user belongs to (any, for superusers)."""
    context = get_tenant_context(request)
    if context is None:
        return HttpResponseRedirect(reverse("admin:login"))
    raw = request.POST.get("tenant", "")
    if raw == "" and context.is_superuser:
        request.session.pop(SESSION_TENANT_KEY, None)
    else:
        try:
            tenant_id = int(raw)
        except ValueError:
            return HttpResponseBadRequest("Unknown tenant.")
        allowed = context.is_superuser and tenant_get(pk=tenant_id) is not None
        allowed = allowed or any(m.tenant_id == tenant_id for m in context.memberships)
        if not allowed:
            return HttpResponseBadRequest("Unknown tenant.")
        request.session[SESSION_TENANT_KEY] = tenant_id
    messages.info(request, "Tenant switched.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:index")
    return HttpResponseRedirect(target)
