from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class SecurityConfig(ModuleAppConfig):
    name = "apps.security"
    label = "security"
    verbose_name = "Security"
    descriptor = ModuleDescriptor(
        category="Security",
        summary="The perimeter: security headers, the API gateway's limits, network protections and the "
        "SSRF-safe outbound HTTP client other modules must use.",
        modules=(
            Module(
                "Perimeter",
                "HSTS, secure cookies, nosniff, frame denial and SSL redirect in production "
                "(Django's SecurityMiddleware, checked by `check --deploy`).",
                built=True,
            ),
            Module("Gateway", "Request body size limit (413), per-principal rate limit (429).", built=True),
            Module(
                "Network protections",
                "SSRF-safe outbound HTTP client (`apps.security.outbound.fetch`): http/https only, no credentials "
                "in URLs; resolves once, refuses loopback, private, link-local, shared, multicast, reserved and cloud "
                "metadata addresses (also in IPv6-embedded forms) and connects to the checked address; re-checks "
                "every redirect; one deadline and a body size cap per call. Platform admins may allow a host per "
                "tenant (OutboundAllowRule). Inbound IP allow rules are not built yet.",
                built=True,
            ),
        ),
        interfaces=Interfaces(
            services=(
                "apps.security.outbound.fetch",
                "apps.security.outbound.check_url",
                "apps.security.services.outbound_allow",
                "apps.security.services.outbound_disallow",
                "apps.security.selectors.outbound_allow_rule_match",
                "apps.security.selectors.outbound_allow_rule_list",
            ),
        ),
        depends_on=(),
    )

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from apps.security.models import OutboundAllowRule

        # Who opened which hole in the SSRF guard, and when, must stay provable.
        auditlog.register(OutboundAllowRule, exclude_fields=["updated_at"])
