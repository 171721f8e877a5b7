"""OpenAPI descriptions of Aurum's authentication schemes (drf-spectacular extensions)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.access.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An Aurum API token (`aur_…`), created in the portal, by API or with "
            "`manage.py create_api_token`. It acts in its own tenant with its scopes, capped by its user's role.",
        }


class ApiTokenBasicScheme(OpenApiAuthenticationExtension):
    target_class = "apps.access.authentication.ApiTokenBasicAuthentication"
    name = "apiTokenBasic"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "HTTP Basic with an Aurum API token (`aur_…`) as the password; the username is "
            "ignored. For clients that only speak Basic, such as Confluent Schema Registry clients.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "apps.access.authentication.TenantSessionAuthentication"
    name = "portalSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The portal session; unsafe methods also need the CSRF token.",
        }
