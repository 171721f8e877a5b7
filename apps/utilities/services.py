"""Schema registry services: register versions under the subject's compatibility rules."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apps.kernel.audit import audit_actor
from apps.kernel.errors import ConflictError, ForbiddenError
from apps.runtime.events import publish_event
from apps.utilities import selectors
from apps.utilities.choices import CompatibilityChoices
from apps.utilities.compatibility import Incompatibility
from apps.utilities.models import RegisteredSchema, RegistryConfig, SchemaSubject, SchemaVersion


def fingerprint(schema: dict[str, Any]) -> str:
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def schema_validate(schema: Any) -> dict[str, Any]:
    """A JSON Schema document, or ValidationError saying why not."""
    if not isinstance(schema, dict):
        raise ValidationError({"schema": "A JSON Schema is a JSON object."})
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise ValidationError({"schema": f"Not a valid JSON Schema at {where}: {exc.message}"}) from None
    return schema


# Subject name prefix → the owner that alone may write such subjects (e.g. "contract." → the
# host's contract lifecycle). Anyone else, registry APIs included, may only read them.
_managed_prefixes: dict[str, str] = {}


def register_managed_prefix(prefix: str, *, owner: str) -> None:
    """Reserve subjects named `prefix…` for `owner`, which passes `managed_by=owner` to write them."""
    _managed_prefixes[prefix] = owner


def _check_managed(subject: str, managed_by: str) -> None:
    subject = subject.strip()  # the name as it will be stored: " contract.x" is "contract.x"
    for prefix, owner in _managed_prefixes.items():
        if subject.startswith(prefix) and managed_by != owner:
            raise ForbiddenError(
                f"Subject '{subject}' is managed by {owner}: it changes when a data contract version is "
                "activated, after four-eyes approval, not through the registry.",
                slug="managed-subject",
            )


class IncompatibleSchema(ConflictError):
    slug = "incompatible-schema"
    title = "Incompatible schema"

    def __init__(self, subject: str, mode: str, problems: list[Incompatibility]) -> None:
        super().__init__(
            f"The schema is not {mode} compatible with subject '{subject}': "
            + "; ".join(problem.message for problem in problems),
            incompatibilities=[
                {"kind": p.kind, "path": p.path, "message": p.message, "version": p.version} for p in problems
            ],
        )
        self.problems = problems


@transaction.atomic
def subject_get_or_create(*, tenant: Any, name: str) -> SchemaSubject:
    name = name.strip()
    if not name or len(name) > 255:
        raise ValidationError({"subject": "A subject name has 1 to 255 characters."})
    subject, _ = SchemaSubject.objects.get_or_create(tenant=tenant, name=name)
    return subject


@transaction.atomic
def schema_register(
    *,
    actor: Any,
    tenant: Any,
    subject: str,
    schema: dict[str, Any],
    allow_breaking: bool = False,
    managed_by: str = "",
) -> SchemaVersion:
    """Register `schema` as the next version of `subject`.

    The same schema registered again returns its existing version (clients retry). A schema
    the subject's compatibility level refuses raises IncompatibleSchema, unless
    `allow_breaking` says a person confirmed the break (it is recorded on the version).
    """
    _check_managed(subject, managed_by)
    schema_validate(schema)
    subject_row = subject_get_or_create(tenant=tenant, name=subject)
    subject_row = SchemaSubject.objects.select_for_update().get(pk=subject_row.pk)
    if managed_by and not subject_row.compatibility:
        # Pin the level a managed subject starts with, so a later change of the tenant's
        # default cannot loosen the checks its owner relies on.
        subject_row.compatibility = selectors.effective_compatibility(subject_row)
        subject_row.save(update_fields=["compatibility", "updated_at"])
    digest = fingerprint(schema)
    existing = subject_row.versions.filter(schema__fingerprint=digest).select_related("schema").first()
    if existing is not None:
        return existing
    problems = selectors.schema_incompatibilities(subject=subject_row, schema=schema)
    if problems and not allow_breaking:
        raise IncompatibleSchema(subject_row.name, selectors.effective_compatibility(subject_row), problems)
    content, _ = RegisteredSchema.objects.get_or_create(tenant=tenant, fingerprint=digest, defaults={"schema": schema})
    latest = subject_row.versions.order_by("-version").values_list("version", flat=True).first() or 0
    with audit_actor(actor):
        version = SchemaVersion.objects.create(
            subject=subject_row,
            version=latest + 1,
            schema=content,
            breaking=bool(problems),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
    publish_event(
        "schema.registered",
        {"subject": subject_row.name, "version": version.version, "schema_id": content.pk, "breaking": bool(problems)},
        tenant=tenant,
        actor=actor,
    )
    return version


@transaction.atomic
def subject_set_compatibility(
    *,
    actor: Any,
    tenant: Any,
    subject: str,
    compatibility: str | None,
    lenient: bool | None = None,
    managed_by: str = "",
) -> SchemaSubject:
    """Set (or with None, clear back to the tenant default) a subject's compatibility level."""
    _check_managed(subject, managed_by)
    if compatibility is not None and compatibility not in CompatibilityChoices.values:
        raise ValidationError({"compatibility": f"Unknown level {compatibility!r}."})
    subject_row = subject_get_or_create(tenant=tenant, name=subject)
    subject_row.compatibility = compatibility or ""
    if lenient is not None:
        subject_row.lenient = lenient
    with audit_actor(actor):
        subject_row.save(update_fields=["compatibility", "lenient", "updated_at"])
    return subject_row


@transaction.atomic
def registry_config_set(*, actor: Any, tenant: Any, compatibility: str) -> RegistryConfig:
    """Set the tenant's default compatibility level."""
    if compatibility not in CompatibilityChoices.values:
        raise ValidationError({"compatibility": f"Unknown level {compatibility!r}."})
    with audit_actor(actor):
        config, _ = RegistryConfig.objects.update_or_create(tenant=tenant, defaults={"compatibility": compatibility})
    return config
