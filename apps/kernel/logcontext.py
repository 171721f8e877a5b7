"""Per-request values that every log line carries: request id, user, tenant.

Context variables rather than thread locals so that they follow async code and are reset
cleanly at the end of each request or task.
"""

from __future__ import annotations

import contextvars

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("aurum_request_id", default="-")
user_var: contextvars.ContextVar[str] = contextvars.ContextVar("aurum_user", default="-")
tenant_var: contextvars.ContextVar[str] = contextvars.ContextVar("aurum_tenant", default="-")


def bind(*, user: str | None = None, tenant: str | None = None) -> None:
    if user is not None:
        user_var.set(user)
    if tenant is not None:
        tenant_var.set(tenant)
