"""Schema registry reads other apps may use."""

from __future__ import annotations

from typing import Any

from apps.utilities.choices import DEFAULT_COMPATIBILITY
from apps.utilities.compatibility import CompatibilityMode, Incompatibility, check
from apps.utilities.models import RegisteredSchema, RegistryConfig, SchemaSubject, SchemaVersion


def effective_compatibility(subject: SchemaSubject) -> str:
    if subject.compatibility:
        return subject.compatibility
    config = RegistryConfig.objects.filter(tenant_id=subject.tenant_id).first()
    return config.compatibility if config else DEFAULT_COMPATIBILITY


def tenant_default_compatibility(*, tenant: Any) -> str:
    config = RegistryConfig.objects.filter(tenant=tenant).first()
    return config.compatibility if config else DEFAULT_COMPATIBILITY


def subject_get(*, tenant: Any, name: str) -> SchemaSubject | None:
    return SchemaSubject.objects.for_tenant(tenant).filter(name=name).first()


def subject_list(*, tenant: Any) -> list[SchemaSubject]:
    return list(SchemaSubject.objects.for_tenant(tenant).order_by("name"))


def subject_history(subject: SchemaSubject) -> list[tuple[int, dict[str, Any]]]:
    """(version, schema) pairs, oldest first: what compatibility checks run against."""
    rows = subject.versions.select_related("schema").order_by("version")
    return [(row.version, row.schema.schema) for row in rows]


def schema_incompatibilities(
    *, subject: SchemaSubject, schema: dict[str, Any], mode: str | None = None
) -> list[Incompatibility]:
    """Why `schema` may not become the subject's next version under its (or the given) level; [] if it may."""
    level = CompatibilityMode(mode or effective_compatibility(subject))
    return check(schema, subject_history(subject), level, lenient=subject.lenient)


def schema_version_get(*, subject: SchemaSubject, version: int | str) -> SchemaVersion | None:
    """A version by number, or the latest for "latest" / -1."""
    versions = subject.versions.select_related("schema", "subject")
    if str(version) in ("latest", "-1"):
        return versions.order_by("-version").first()
    try:
        return versions.filter(version=int(version)).first()
    except (TypeError, ValueError):
        return None


def schema_get_by_id(*, tenant: Any, schema_id: int) -> RegisteredSchema | None:
    return RegisteredSchema.objects.for_tenant(tenant).filter(pk=schema_id).first()
