from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class StorageConfig(ModuleAppConfig):
    name = "apps.storage"
    label = "storage"
    verbose_name = "Data Storage"
    descriptor = ModuleDescriptor(
        category="Data Storage",
        summary="Where data lives: the append-only raw layer, Golden Data Points, KPI values, published outputs and calendars.",
        modules=(
            Module(
                "Raw data",
                "Records exactly as received, per batch, append-only (a trigger on PostgreSQL); rejections; "
                "retention deletes through one audited door.",
                built=True,
            ),
            Module(
                "Golden Data Points",
                "One trusted value per measure, entity, dimensions and observed time; bitemporal versions; "
                "set-based survivorship (latest or source priority) and steward overrides; lineage both ways.",
                built=True,
            ),
            Module("KPIs", "Computed KPI values per period and dimension set."),
            Module("Published outputs", "Immutable, hashed snapshots of what was published."),
            Module(
                "Calendar alignment",
                "Governed calendars (Gregorian with any fiscal start, ISO 8601 weeks, retail 4-4-5 / 4-5-4 / 5-4-4 "
                "with 53-week years, custom period lists), tenant-owned or platform-wide; period tables with one "
                "day row per date carrying its week, period, quarter, half and year, so KPIs bucket by a join; "
                "previous / same period last year, overlaps between calendars; periods soft-closed and closed "
                "per tenant.",
                built=True,
            ),
        ),
        interfaces=Interfaces(
            urls=("/api/v1/golden-data-points/", "/api/v1/calendars/", "/api/v1/calendar-periods/"),
            events_published=(
                "gdp.overridden",
                "gdp.override_removed",
                "calendar.created",
                "calendar.generated",
                "calendar.cleared",
                "period.soft_closed",
                "period.closed",
                "period.reopened",
            ),
            services=(
                "apps.storage.services.gdp_override_set",
                "apps.storage.services.gdp_override_remove",
                "apps.storage.services.raw_records_expire",
                "apps.storage.merge.merge_batch",
                "apps.storage.selectors.gdp_lineage",
                "apps.storage.selectors.batch_lineage",
                "apps.storage.calendars.services.calendar_create",
                "apps.storage.calendars.services.calendar_update",
                "apps.storage.calendars.services.calendar_generate",
                "apps.storage.calendars.services.calendar_clear",
                "apps.storage.calendars.services.period_soft_close",
                "apps.storage.calendars.services.period_close",
                "apps.storage.calendars.services.period_reopen",
                "apps.storage.calendars.selectors.calendar_default",
                "apps.storage.calendars.selectors.with_state",
                "apps.storage.calendars.selectors.date_is_closed",
                "apps.storage.calendars.selectors.with_buckets",
                "apps.storage.calendars.alignment.period_for",
                "apps.storage.calendars.alignment.periods_of_day",
                "apps.storage.calendars.alignment.previous_period",
                "apps.storage.calendars.alignment.same_period_last_year",
                "apps.storage.calendars.alignment.compare_period",
                "apps.storage.calendars.alignment.overlap",
                "apps.storage.calendars.alignment.overlaps",
            ),
        ),
        depends_on=("host", "runtime"),
    )

    def ready(self) -> None:
        # Calendars live in their own package; Django autodiscovers only apps.storage.admin.
        from apps.storage.calendars import admin, audit  # noqa: F401  (portal pages; auditlog registration)
