from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class AccessConfig(ModuleAppConfig):
    name = "apps.access"
    label = "access"
    verbose_name = "Access"
    descriptor = ModuleDescriptor(
        category="Access",
        summary="Who may do what: authentication (session, API tokens), authorization by tenant role "
        "and scope, subscription enforcement.",
        modules=(
            Module(
                "Authentication",
                "Portal sessions and hashed, scoped, expiring API tokens with a visible prefix.",
                built=True,
            ),
            Module(
                "Authorization",
                "Tenant roles × token scopes on every API call; tenant-scoped admin; "
                "per-object grants (django-guardian) installed for later modules.",
                built=True,
            ),
            Module("Subscription enforcement", "Plans, subscriptions and quotas for consumers."),
        ),
        interfaces=Interfaces(
            urls=("/api/v1/tokens/", "/portal/tenant/", "/admin/"),
            events_published=("token.created", "token.revoked"),
            events_consumed=("membership.removed",),
            services=(
                "apps.access.services.api_token_create",
                "apps.access.services.api_token_validate",
                "apps.access.services.api_token_revoke",
                "apps.access.services.api_token_authenticate",
            ),
        ),
        depends_on=("host", "runtime"),
    )

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from apps.access import audit, schema  # noqa: F401  (auditlog registration, OpenAPI extensions)
        from apps.access.models import ApiToken
        from apps.access.tokencache import access_changed
        from apps.host.models import Membership, Tenant

        # Cached token contexts follow every change of what they were built from.
        for model in (ApiToken, Membership, Tenant, get_user_model()):
            for signal in (post_save, post_delete):
                signal.connect(access_changed, sender=model, dispatch_uid=f"aurum.access.{model.__name__}.{signal}")
