"""Import an ODCS document as a new draft version of a contract (creating the contract when its key is new).

Every refusal says where: YAML and schema problems come located from parsing, and what
Aurum's own validation refuses (a pattern Python cannot compile, a version that is not
semantic, a role Aurum does not know) is reported at the ODCS path it came from, with
its line.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.host import services
from apps.host.models import ContractVersion, DataContract
from apps.host.odcs.mapping import VersionSpec, odcs_to_version_spec
from apps.host.odcs.parsing import OdcsError, OdcsProblem, locate, parse
from apps.kernel.errors import ConflictError


def contract_import(*, actor: Any, tenant: Any, text: str, key: str | None = None) -> ContractVersion:
    """Create a DRAFT version from ODCS YAML `text`, and its contract when `key` (or the derived key) is new.

    Raises OdcsError (every problem located) for a document that is not valid ODCS or that
    Aurum's validation refuses, and ConflictError when the contract already has that version.
    One transaction: a refused import leaves nothing behind.
    """
    document = parse(text)
    spec = odcs_to_version_spec(document, key=key)
    try:
        with transaction.atomic():
            return _import(actor, tenant, spec)
    except ValidationError as exc:
        raise OdcsError(_problems(exc, spec, text)) from None


def _import(actor: Any, tenant: Any, spec: VersionSpec) -> ContractVersion:
    contract = DataContract.objects.select_for_update().filter(tenant=tenant, key=spec.key).first()
    if contract is None:
        owner = actor if getattr(actor, "is_authenticated", False) else None
        contract = services.contract_create(
            actor=actor,
            tenant=tenant,
            key=spec.key,
            name=spec.name,
            domain=spec.domain,
            description=spec.description,
            owner=owner,
        )
    elif ContractVersion.objects.filter(contract=contract, version=spec.version).exists():
        raise ConflictError(
            f"Contract '{contract.key}' already has version {spec.version}; "
            "raise the document's version or import it under another key.",
            slug="version-exists",
            contract=contract.key,
            version=spec.version,
        )
    return services.contract_version_create(
        actor=actor,
        contract=contract,
        version=spec.version,
        fields=spec.fields,
        quality_rules=spec.quality_rules,
        **spec.version_attrs(),
    )


def _problems(exc: ValidationError, spec: VersionSpec, text: str) -> list[OdcsProblem]:
    """Aurum's validation errors, each at the ODCS path (and line) its value came from."""
    messages = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    problems = []
    for error_key, texts in messages.items():
        path = spec.source_of(error_key) if error_key not in ("", "__all__") else ""
        for message in texts:
            if not path and error_key not in ("", "__all__"):
                message = f"{error_key}: {message}"  # e.g. a --key that is not a slug
            problems.append(OdcsProblem(path, locate(text, path), message))
    return sorted(problems, key=lambda p: (p.line or 0, p.path, p.message))
