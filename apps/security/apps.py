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
                "Outbound HTTP guard refusing private, loopback, link-local and metadata addresses; IP allow rules.",
            ),
        ),
        interfaces=Interfaces(),
        depends_on=(),
    )
