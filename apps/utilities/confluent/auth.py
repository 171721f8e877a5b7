"""Who may call the Confluent dialect, and with which scope.

Confluent clients speak HTTP Basic (`basic.auth.user.info = user:password`); here the password is an
Aurum API token and the username is ignored. Bearer tokens work too. The portal session does not:
these are machine clients, and a session would need CSRF tokens no Confluent client sends.

The authentication classes belong to the access app, which this app may not import (see the
import contracts in pyproject.toml). Like `REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]` in
the settings, the dialect names them by dotted path; the access app supplies them.
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from apps.kernel.api.permissions import TenantAccess

# The first one names the WWW-Authenticate challenge of a 401: Basic, what Confluent clients answer.
AUTHENTICATION_CLASSES = (
    "apps.access.authentication.ApiTokenBasicAuthentication",
    "apps.access.authentication.ApiTokenAuthentication",
)


def authentication_classes() -> list[type]:
    return [import_string(path) for path in AUTHENTICATION_CLASSES]


class RegistryAccess(TenantAccess):
    """The kernel's TenantAccess (token's tenant active, role and scope allow the request).

    Views name their scopes per HTTP method in `scope_map` (e.g. `{"post": "read"}` for a
    compatibility check, which registers nothing); otherwise safe methods need `read`, others `write`.
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        view.action = request.method.lower()
        return super().has_permission(request, view)
