"""Confluent Schema Registry's REST endpoints over Aurum's schema registry (JSON Schema only).

Every view is tenant-scoped by the caller's API token: another tenant's subjects and schema ids
are "not found" (40401, 40403), exactly like ones nobody registered. Errors leave in Confluent's
shape, `{"error_code": <code>, "message": <text>}`, never as problem details: the kernel's
problem handler does not apply here (`get_exception_handler` below).

Deliberate differences from Confluent:

* Only JSON Schema is stored. `schemaType` "AVRO" or "PROTOBUF" answers 422/42201. Confluent reads
  an absent `schemaType` as AVRO; here an absent `schemaType` is accepted when the schema string is
  a valid JSON Schema object (a typical Avro record, `{"type": "record", …}`, is not one, so it is
  still refused with 42201).
* Schema references, contexts, modes, metadata and rule sets are not supported; versions are
  immutable (no DELETE of subjects or versions).
* A schema string is returned as compact JSON of the stored document: equal in content to the
  registered one, not necessarily byte for byte (PostgreSQL's jsonb keeps no key order).
* A subject set up by `PUT /config/{subject}` but without versions is not listed by
  `GET /subjects` and answers 40401 on its versions, as in Confluent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import Http404
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from apps.kernel.context import get_tenant_context
from apps.kernel.errors import DomainError
from apps.utilities import compatibility, selectors, services
from apps.utilities.choices import CompatibilityChoices
from apps.utilities.compatibility import Incompatibility
from apps.utilities.confluent import auth
from apps.utilities.models import RegisteredSchema, RegistryConfig, SchemaSubject, SchemaVersion

logger = logging.getLogger("aurum.api")

CONTENT_TYPE_V1 = "application/vnd.schemaregistry.v1+json"
CONTENT_TYPE_DEFAULT = "application/vnd.schemaregistry+json"
MAX_VERSION = 2**31 - 1
LEVELS = ", ".join(level.lower() for level in CompatibilityChoices.values)

# --- content types -----------------------------------------------------------------------------------


class RegistryV1Renderer(JSONRenderer):
    media_type = CONTENT_TYPE_V1


class RegistryDefaultRenderer(JSONRenderer):
    media_type = CONTENT_TYPE_DEFAULT


class RegistryV1Parser(JSONParser):
    media_type = CONTENT_TYPE_V1


class RegistryDefaultParser(JSONParser):
    media_type = CONTENT_TYPE_DEFAULT


class RegistryNegotiation(DefaultContentNegotiation):
    """Honours Accept among the registry's JSON types; any other Accept gets the v1 type, not 406."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            return renderers[0], renderers[0].media_type


# --- errors --------------------------------------------------------------------------------------------


class RegistryError(Exception):
    """An error answered in Confluent's shape: HTTP status, Confluent error code, message."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def subject_not_found(name: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{name}' not found.")


def version_not_found(version: int | str) -> RegistryError:
    return RegistryError(404, 40402, f"Version {version} not found.")


def schema_not_found(schema_id: Any = None) -> RegistryError:
    return RegistryError(404, 40403, "Schema not found." if schema_id is None else f"Schema {schema_id} not found.")


def level_not_configured(name: str) -> RegistryError:
    return RegistryError(404, 40408, f"Subject '{name}' does not have subject-level compatibility configured.")


def invalid_schema(reason: str) -> RegistryError:
    return RegistryError(422, 42201, f"Invalid schema: {reason}")


def invalid_version(raw: str) -> RegistryError:
    return RegistryError(
        422,
        42202,
        f"The specified version '{raw}' is not a valid version id. "
        f'Allowed values are between [1, {MAX_VERSION}] and the string "latest".',
    )


def invalid_level() -> RegistryError:
    return RegistryError(422, 42203, f"Invalid compatibility level. Valid values are {LEVELS}.")


def describe(problem: Incompatibility) -> str:
    """One incompatibility as a sentence: which rule, where, against which version, and why."""
    return f"{problem.kind} at {problem.path} (against version {problem.version}): {problem.message}"


def registry_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every error of the dialect in Confluent's shape, 500s included."""
    status, error_code, message, headers = _describe_error(exc)
    set_rollback()  # an open ATOMIC block must not commit half of a failed request
    return Response({"error_code": error_code, "message": message}, status=status, headers=headers)


def _describe_error(exc: Exception) -> tuple[int, int, str, dict[str, str]]:
    if isinstance(exc, RegistryError):
        return exc.status, exc.error_code, exc.message, {}
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        header = getattr(exc, "auth_header", None)
        return 401, 40101, f"Unauthorized: {exc.detail}", ({"WWW-Authenticate": header} if header else {})
    if isinstance(exc, exceptions.Throttled):
        headers = {"Retry-After": str(int(exc.wait) + 1)} if exc.wait is not None else {}
        return 429, 42901, str(exc.detail), headers
    if isinstance(exc, exceptions.APIException) and exc.status_code == 403:
        return 403, 40301, f"Forbidden: {exc.detail}", {}
    if isinstance(exc, DomainError):
        code = 40301 if exc.status_code == 403 else exc.status_code
        return exc.status_code, code, exc.detail, {}
    if isinstance(exc, Http404):
        return 404, 404, "HTTP 404 Not Found", {}
    if isinstance(exc, RequestDataTooBig):
        return 413, 413, "The request body is too large.", {}
    if isinstance(exc, DjangoValidationError):
        return 422, 422, "; ".join(exc.messages), {}
    if isinstance(exc, exceptions.APIException):  # 400 parse errors, 405, 415…
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return exc.status_code, exc.status_code, str(detail), {}
    logger.exception("Unhandled error in the Confluent registry API", exc_info=exc)
    if isinstance(exc, DatabaseError):
        return 500, 50001, "Error in the backend data store.", {}
    return 500, 500, "Internal server error; it has been logged.", {}


# --- parsing -------------------------------------------------------------------------------------------


def parse_version(raw: str) -> int | str:
    """A version number in [1, 2^31-1], or "latest" (also spelt -1); otherwise 42202."""
    if raw.lower() == "latest":
        return "latest"
    try:
        number = int(raw)
    except ValueError:
        raise invalid_version(raw) from None
    if number == -1:
        return "latest"
    if not 1 <= number <= MAX_VERSION:
        raise invalid_version(raw)
    return number


def parse_schema(body: Any) -> dict[str, Any]:
    """The JSON Schema document of a `{"schema": "<JSON string>", "schemaType": "JSON"}` body, or 42201."""
    if not isinstance(body, dict):
        raise invalid_schema('the body must be a JSON object such as {"schema": "…", "schemaType": "JSON"}.')
    schema_type = body.get("schemaType")
    if schema_type is not None and str(schema_type).upper() != "JSON":
        raise invalid_schema(f"schemaType '{schema_type}' is not supported: this registry stores JSON Schema only.")
    if body.get("references"):
        raise invalid_schema("schema references are not supported.")
    hint = ' Without "schemaType" Confluent means AVRO; this registry needs "schemaType": "JSON".'
    text = body.get("schema")
    if not isinstance(text, str) or not text.strip():
        raise invalid_schema('"schema" must be a non-empty string holding the JSON Schema document.')
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise invalid_schema(f"the schema string is not JSON ({exc}).") from None
    if not isinstance(document, dict):
        raise invalid_schema("a JSON Schema here is a JSON object." + (hint if schema_type is None else ""))
    try:
        return services.schema_validate(document)
    except DjangoValidationError as exc:
        raise invalid_schema(" ".join(exc.messages) + (hint if schema_type is None else "")) from None


def parse_level(body: Any) -> str:
    """The level of a `{"compatibility": "FULL"}` body (any letter case), or 42203."""
    level = None
    if isinstance(body, dict):
        level = body.get("compatibility", body.get("compatibilityLevel"))
    if not isinstance(level, str) or level.upper() not in CompatibilityChoices.values:
        raise invalid_level()
    return level.upper()


def query_flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() == "true"


def schema_string(schema: dict[str, Any]) -> str:
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def version_body(row: SchemaVersion) -> dict[str, Any]:
    return {
        "subject": row.subject.name,
        "id": row.schema_id,
        "version": row.version,
        "schemaType": row.schema.schema_type,
        "schema": schema_string(row.schema.schema),
    }


# --- views ---------------------------------------------------------------------------------------------


class RegistryView(APIView):
    """Base of the dialect: token auth (Basic or Bearer), tenant scope, Confluent content types and errors."""

    schema = None  # an external dialect, documented by Confluent: not part of Aurum's OpenAPI document
    authentication_classes = auth.authentication_classes()
    permission_classes = [auth.RegistryAccess]
    renderer_classes = [RegistryV1Renderer, RegistryDefaultRenderer, JSONRenderer]
    parser_classes = [RegistryV1Parser, RegistryDefaultParser, JSONParser]
    content_negotiation_class = RegistryNegotiation
    scope_map: dict[str, str] = {}  # HTTP method → scope, where it differs from read (safe) / write
    # The rows the view serves; always read through `rows()`, which restricts them to the tenant.
    queryset: QuerySet = SchemaSubject.objects.all()

    def get_exception_handler(self) -> Any:
        return registry_exception_handler

    @property
    def tenant(self) -> Any:
        context = get_tenant_context(self.request)
        assert context is not None, "RegistryAccess runs before any handler"
        return context.tenant

    def rows(self) -> QuerySet:
        return self.queryset.for_tenant(self.tenant)

    def subject(self, name: str) -> SchemaSubject:
        """The tenant's subject with at least one version, else 40401."""
        subject = selectors.subject_get(tenant=self.tenant, name=name)
        if subject is None or not subject.versions.exists():
            raise subject_not_found(name)
        return subject

    def version(self, subject: SchemaSubject, number: int | str) -> SchemaVersion:
        row = selectors.schema_version_get(subject=subject, version=number)
        if row is None:
            raise version_not_found(number)
        return row


class SubjectListView(RegistryView):
    """GET /subjects → ["a", "b"] (with `?subjectPrefix=`)."""

    def get(self, request: Request) -> Response:
        subjects = self.rows().filter(versions__isnull=False)
        prefix = request.query_params.get("subjectPrefix")
        if prefix:
            subjects = subjects.filter(name__startswith=prefix)
        return Response(list(subjects.order_by("name").values_list("name", flat=True).distinct()))


class SubjectLookupView(RegistryView):
    """POST /subjects/{subject}: is this schema registered under the subject? Its version if so."""

    scope_map = {"post": "read"}  # a lookup registers nothing

    def post(self, request: Request, subject: str) -> Response:
        subject_row = self.subject(subject)
        document = parse_schema(request.data)
        row = (
            subject_row.versions.select_related("schema", "subject")
            .filter(schema__fingerprint=services.fingerprint(document))
            .first()
        )
        if row is None:
            raise schema_not_found()
        return Response(version_body(row))


class SubjectVersionsView(RegistryView):
    """GET /subjects/{subject}/versions → [1, 2]; POST registers a schema → {"id": N}."""

    def get(self, request: Request, subject: str) -> Response:
        versions = self.subject(subject).versions.order_by("version").values_list("version", flat=True)
        return Response(list(versions))

    def post(self, request: Request, subject: str) -> Response:
        document = parse_schema(request.data)
        try:
            row = services.schema_register(actor=request.user, tenant=self.tenant, subject=subject, schema=document)
        except services.IncompatibleSchema as exc:
            subject_row = selectors.subject_get(tenant=self.tenant, name=subject)
            mode = selectors.effective_compatibility(subject_row) if subject_row else ""
            details = "; ".join(describe(problem) for problem in exc.problems)
            raise RegistryError(
                409,
                409,
                f"Schema being registered is incompatible with an earlier schema for subject '{subject}' "
                f"under {mode} compatibility; details: [{details}]",
            ) from None
        return Response({"id": row.schema_id})


class SubjectVersionView(RegistryView):
    """GET /subjects/{subject}/versions/{version} (a number or "latest")."""

    def get(self, request: Request, subject: str, version: str) -> Response:
        number = parse_version(version)
        return Response(version_body(self.version(self.subject(subject), number)))


class SubjectVersionSchemaView(RegistryView):
    """GET /subjects/{subject}/versions/{version}/schema → the schema document itself."""

    def get(self, request: Request, subject: str, version: str) -> Response:
        number = parse_version(version)
        return Response(self.version(self.subject(subject), number).schema.schema)


class SchemaByIdView(RegistryView):
    """GET /schemas/ids/{id} → {"schema": "<string>", "schemaType": "JSON"}."""

    queryset = RegisteredSchema.objects.all()

    def content(self, schema_id: str) -> RegisteredSchema:
        row = self.rows().filter(pk=int(schema_id)).first() if schema_id.isdigit() else None
        if row is None:
            raise schema_not_found(schema_id)
        return row

    def get(self, request: Request, schema_id: str) -> Response:
        row = self.content(schema_id)
        return Response({"schema": schema_string(row.schema), "schemaType": row.schema_type})


class SchemaByIdSchemaView(SchemaByIdView):
    """GET /schemas/ids/{id}/schema → the schema document itself."""

    def get(self, request: Request, schema_id: str) -> Response:
        return Response(self.content(schema_id).schema)


class SchemaByIdSubjectsView(SchemaByIdView):
    """GET /schemas/ids/{id}/subjects → the subjects holding the schema."""

    def get(self, request: Request, schema_id: str) -> Response:
        row = self.content(schema_id)
        names = row.versions.order_by("subject__name").values_list("subject__name", flat=True).distinct()
        return Response(list(names))


class SchemaByIdVersionsView(SchemaByIdView):
    """GET /schemas/ids/{id}/versions → [{"subject": …, "version": …}] holding the schema."""

    def get(self, request: Request, schema_id: str) -> Response:
        row = self.content(schema_id)
        pairs = row.versions.order_by("subject__name", "version").values_list("subject__name", "version")
        return Response([{"subject": name, "version": number} for name, number in pairs])


class CompatibilityVersionView(RegistryView):
    """POST /compatibility/subjects/{subject}/versions/{version}: the candidate against that one version.

    The direction (backward, forward, full) is the subject's level; `?verbose=true` adds the
    `messages` that say which rule fails and why.
    """

    scope_map = {"post": "read"}  # a check registers nothing

    def post(self, request: Request, subject: str, version: str) -> Response:
        number = parse_version(version)
        subject_row = self.subject(subject)
        row = self.version(subject_row, number)
        document = parse_schema(request.data)
        mode = selectors.effective_compatibility(subject_row)
        problems = compatibility.check(document, [(row.version, row.schema.schema)], mode, lenient=subject_row.lenient)
        return Response(compatibility_body(problems, verbose=query_flag(request, "verbose")))


class CompatibilityAllView(RegistryView):
    """POST /compatibility/subjects/{subject}/versions: the same check registration would run."""

    scope_map = {"post": "read"}

    def post(self, request: Request, subject: str) -> Response:
        document = parse_schema(request.data)
        subject_row = selectors.subject_get(tenant=self.tenant, name=subject)
        problems = selectors.schema_incompatibilities(subject=subject_row, schema=document) if subject_row else []
        return Response(compatibility_body(problems, verbose=query_flag(request, "verbose")))


def compatibility_body(problems: list[Incompatibility], *, verbose: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"is_compatible": not problems}
    if verbose:
        body["messages"] = [describe(problem) for problem in problems]
    return body


class GlobalConfigView(RegistryView):
    """GET /config → the tenant's default level; PUT {"compatibility": "FULL"} sets it."""

    queryset = RegistryConfig.objects.all()

    def get(self, request: Request) -> Response:
        return Response({"compatibilityLevel": selectors.tenant_default_compatibility(tenant=self.tenant)})

    def put(self, request: Request) -> Response:
        level = parse_level(request.data)
        services.registry_config_set(actor=request.user, tenant=self.tenant, compatibility=level)
        return Response({"compatibility": level})


class SubjectConfigView(RegistryView):
    """GET/PUT/DELETE /config/{subject}: the subject's own level.

    GET answers 40408 when the subject has no level of its own, unless `?defaultToGlobal=true`.
    PUT may precede the subject's first version, as in Confluent. DELETE returns the subject to the
    tenant default and answers the level it had.
    """

    def get(self, request: Request, subject: str) -> Response:
        subject_row = selectors.subject_get(tenant=self.tenant, name=subject)
        if subject_row is not None and subject_row.compatibility:
            return Response({"compatibilityLevel": subject_row.compatibility})
        if query_flag(request, "defaultToGlobal"):
            return Response({"compatibilityLevel": selectors.tenant_default_compatibility(tenant=self.tenant)})
        raise level_not_configured(subject)

    def put(self, request: Request, subject: str) -> Response:
        level = parse_level(request.data)
        services.subject_set_compatibility(actor=request.user, tenant=self.tenant, subject=subject, compatibility=level)
        return Response({"compatibility": level})

    def delete(self, request: Request, subject: str) -> Response:
        subject_row = selectors.subject_get(tenant=self.tenant, name=subject)
        if subject_row is None:
            raise subject_not_found(subject)
        previous = subject_row.compatibility
        if not previous:
            raise level_not_configured(subject)
        services.subject_set_compatibility(actor=request.user, tenant=self.tenant, subject=subject, compatibility=None)
        return Response({"compatibilityLevel": previous})
