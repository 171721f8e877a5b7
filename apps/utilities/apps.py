from apps.kernel.modules import Interfaces, Module, ModuleAppConfig, ModuleDescriptor


class UtilitiesConfig(ModuleAppConfig):
    name = "apps.utilities"
    label = "utilities"
    verbose_name = "Data Utilities"
    descriptor = ModuleDescriptor(
        category="Data Utilities",
        summary="Tools around the data: schema registry with compatibility rules, discovery, migrations.",
        modules=(
            Module(
                "Schema registry",
                "Subjects and versions of JSON Schemas under Confluent's seven compatibility levels, with "
                "readable diffs and compatibility answers that name the failing rule; a native API and a "
                "Confluent Schema Registry compatible REST API, so Confluent clients work unchanged.",
                built=True,
            ),
            Module(
                "Discovery",
                "A tenant-scoped search index fed by the apps that own the objects (data products, contracts and "
                "their fields; KPIs exist but are not indexed yet): ranked full-text search with typo tolerance and "
                "facet counts; PostgreSQL full-text search with pg_trgm, a portable fallback on SQLite.",
                built=True,
            ),
            Module("Migration", "Contract migration plans and configuration bundles."),
        ),
        interfaces=Interfaces(
            urls=("/api/v1/subjects/", "/api/v1/registry/subjects", "/api/v1/registry/config", "/api/v1/search/"),
            events_published=("schema.registered",),
            services=(
                "apps.utilities.services.schema_register",
                "apps.utilities.services.subject_set_compatibility",
                "apps.utilities.services.registry_config_set",
                "apps.utilities.selectors.schema_incompatibilities",
                "apps.utilities.selectors.schema_version_get",
                "apps.utilities.compatibility.check",
                "apps.utilities.compatibility.diff",
                "apps.utilities.search.services.search_index_upsert",
                "apps.utilities.search.services.search_index_remove",
                "apps.utilities.search.services.search_reindex",
                "apps.utilities.search.selectors.search",
                "apps.utilities.search.registry.register_reindexer",
                "apps.utilities.search.registry.register_live_facets",
            ),
        ),
        depends_on=("runtime",),
    )

    def ready(self) -> None:
        from apps.utilities import audit  # noqa: F401  (registers models with django-auditlog)
