from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules

from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor, Schedule


class RuntimeConfig(ModuleAppConfig):
    name = "apps.runtime"
    label = "runtime"
    verbose_name = "Runtime"
    descriptor = ModuleDescriptor(
        category="Runtime",
        summary="What keeps Aurum running: scheduling, messaging (transactional outbox), "
        "observability, error handling and metering.",
        modules=(
            Module(
                "Scheduling",
                "Celery beat schedules in django-celery-beat, editable in the admin; JobRun records.",
                built=True,
            ),
            Module("Messaging", "Transactional outbox, idempotent event handlers, retries, dead letters.", built=True),
            Module(
                "Observability",
                "Health probes, structured logs with request id, user and tenant, the module registry.",
                built=True,
            ),
            Module("Error handling", "Backoff retries and a dead-letter table with replay.", built=True),
            Module("Metering", "Usage records per tenant and subscription."),
        ),
        interfaces=Interfaces(
            urls=("/health/live", "/health/ready", "/api/v1/modules/", "/portal/modules/"),
            services=(
                "apps.runtime.events.publish_event",
                "apps.runtime.events.subscribe",
                "apps.runtime.services.dead_letter_replay",
                "apps.runtime.services.job_run",
                "apps.runtime.registry.module_registry",
            ),
            tasks=("runtime.dispatch_event", "runtime.run_handler", "runtime.sweep_outbox"),
        ),
        depends_on=(),
        health_checks=("apps.runtime.checks.outbox_backlog", "apps.runtime.checks.dead_letters"),
        schedules=(Schedule("Outbox sweep", "runtime.sweep_outbox", every_seconds=60),),
    )

    def ready(self) -> None:
        from apps.runtime.schedules import ensure_module_schedules

        autodiscover_modules("handlers")
        post_migrate.connect(ensure_module_schedules, sender=self, dispatch_uid="runtime.ensure_module_schedules")
