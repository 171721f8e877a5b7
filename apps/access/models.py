"""Access models: API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.kernel.models import TenantOwnedModel

TOKEN_PREFIX = "aur_"  # noqa: S105 (a public marker, not a secret)


class ApiToken(TenantOwnedModel):
    """A bearer token for the API, bound to one user in one tenant.

    Only a SHA-256 digest of the secret is stored: tokens are 32 random bytes, so a slow
    password hash adds nothing, and the plain token is shown exactly once at creation.
    The `prefix` is the visible, non-secret part that identifies a token in lists and logs.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="aurum_api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly export job'.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text="Any of read, write, admin.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({TOKEN_PREFIX}{self.prefix}…)"

    @property
    def display_prefix(self) -> str:
        return f"{TOKEN_PREFIX}{self.prefix}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired
