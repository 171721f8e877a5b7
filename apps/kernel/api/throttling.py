"""Rate limits per principal: one bucket per API token, else per user, else per client address."""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle


class PrincipalRateThrottle(SimpleRateThrottle):
    scope = "principal"

    def get_cache_key(self, request: Any, view: Any) -> str:
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "pk", None) is not None:
            ident = f"token:{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
