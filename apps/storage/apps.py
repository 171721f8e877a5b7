from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor, Schedule


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
            Module(
                "KPIs",
                "Computed KPI values per KPI version, period and dimension set (actual, numerator/denominator, "
                "target, variance, attainment, status, streak, as-of); replaced set-based per period, targets "
                "and streaks stamped in SQL.",
                built=True,
            ),
            Module(
                "Published outputs",
                "Immutable, hashed snapshots of what was published (a trigger on PostgreSQL), numbered per KPI, "
                "restatements superseding them; the latest one and the one in force on a given day.",
                built=True,
            ),
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
                "apps.storage.services.raw_records_retention_run",
                "apps.storage.merge.BatchMerge",
                "apps.storage.kpi_values.kpi_values_replace",
                "apps.storage.kpi_values.kpi_values_apply_targets",
                "apps.storage.selectors.gdp_lineage",
                "apps.storage.selectors.batch_lineage",
                "apps.storage.published.published_output_create",
                "apps.storage.published.published_output_latest",
                "apps.storage.published.published_output_as_published_on",
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
            tasks=("storage.expire_raw_records",),
        ),
        depends_on=("host", "runtime"),
        schedules=(Schedule("Expire raw records", "storage.expire_raw_records", every_seconds=86400),),
    )

    def ready(self) -> None:
        # Calendars live in their own package; Django autodiscovers only apps.storage.admin.
        from apps.storage.calendars import admin, audit  # noqa: F401  (portal pages; auditlog registration)
