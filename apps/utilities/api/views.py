"""The schema registry's native API: subjects, their versions, diffs, compatibility checks and config.

Subject names may hold dots and dashes (`contract.orders`, `orders-value`), so the subject lookup
accepts any character but "/". Another tenant's subject is simply not found (404).

The version routes (`subjects/{name}/versions/…`) are plain views rather than router actions:
registering creates the subject on its first version, so POST on a subject nobody registered yet
is not "not found", and a version has a second URL parameter a router action cannot reverse.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Max, Prefetch
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.kernel.api.problems import PROBLEM_CONTENT_TYPE, Problem
from apps.kernel.api.serializers import ProblemSerializer
from apps.kernel.api.viewsets import TenantReadOnlyViewSet, TenantScopedMixin
from apps.utilities import compatibility, selectors, services
from apps.utilities.api.serializers import (
    ChangeSerializer,
    CompatibilityCheckSerializer,
    CompatibilityResultSerializer,
    DiffSerializer,
    SchemaRegisterSerializer,
    SchemaVersionSerializer,
    SchemaVersionSummarySerializer,
    SubjectConfigSerializer,
    SubjectDetailSerializer,
    SubjectSerializer,
)
from apps.utilities.models import SchemaSubject, SchemaVersion

SUBJECT_PARAMETER = OpenApiParameter(
    "name", str, OpenApiParameter.PATH, description="Subject name, e.g. `contract.orders` or `orders-value`."
)
# What parse_version accepts (it also ignores the case of `latest`).
VERSION_PATTERN = r"^([1-9][0-9]*|latest)$"
VERSION_PARAMETER = OpenApiParameter(
    "version",
    str,
    OpenApiParameter.PATH,
    description="A version number (1, 2, …) or `latest`.",
    pattern=VERSION_PATTERN,
)

INVALID_VERSION_RESPONSE = OpenApiResponse(ProblemSerializer, description="Not a version number or `latest`.")


class InvalidVersion(Problem):
    slug = "invalid-version"
    title = "Invalid version"


def parse_version(raw: str | None, *, name: str = "version") -> int | str:
    """A version number (≥ 1) or "latest"; anything else is a 400 problem."""
    text = (raw or "").strip()
    if text.lower() == "latest":
        return "latest"
    if text.isascii() and text.isdigit() and int(text) >= 1:  # ASCII: '²'.isdigit() is true, int('²') fails
        return int(text)
    raise InvalidVersion(f"`{name}` must be a version number (1, 2, …) or 'latest', not {raw!r}.")


def version_or_404(subject: SchemaSubject, version: int | str) -> SchemaVersion:
    row = selectors.schema_version_get(subject=subject, version=version)
    if row is None:
        what = "has no version yet" if version == "latest" else f"has no version {version}"
        raise exceptions.NotFound(f"Subject '{subject.name}' {what}.")
    return row


class SubjectViewSet(TenantReadOnlyViewSet):
    """Schema registry subjects of the tenant, each a line of JSON Schema versions."""

    queryset = SchemaSubject.objects.annotate(latest_version=Max("versions__version")).order_by("name")
    serializer_class = SubjectSerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    # A compatibility check reads: it registers nothing.
    scope_map = {"compatibility": "read"}

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.action != "list":
            versions = SchemaVersion.objects.order_by("version")
            queryset = queryset.prefetch_related(Prefetch("versions", queryset=versions))
        return queryset

    def get_serializer_class(self) -> Any:
        return SubjectSerializer if self.action == "list" else SubjectDetailSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["default_compatibility"] = selectors.tenant_default_compatibility(tenant=self.tenant_context.tenant)
        return context

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from",
                str,
                pattern=VERSION_PATTERN,
                description="The older version (number or `latest`); default: `to` − 1.",
            ),
            OpenApiParameter(
                "to",
                str,
                pattern=VERSION_PATTERN,
                description="The newer version (number or `latest`); default: `latest`.",
            ),
        ],
        responses={200: DiffSerializer, (400, PROBLEM_CONTENT_TYPE): INVALID_VERSION_RESPONSE},
    )
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """What changed between two versions, compatible changes included, in readable sentences."""
        subject = self.get_object()
        to_version = version_or_404(subject, parse_version(request.query_params.get("to", "latest"), name="to"))
        if "from" in request.query_params:
            from_version = version_or_404(subject, parse_version(request.query_params["from"], name="from"))
        elif to_version.version > 1:
            from_version = version_or_404(subject, to_version.version - 1)
        else:
            raise InvalidVersion(f"Subject '{subject.name}' has only version 1: there is nothing to compare it with.")
        changes = compatibility.diff(from_version.schema.schema, to_version.schema.schema)
        body = {
            "subject": subject.name,
            "from": from_version.version,
            "to": to_version.version,
            "changes": ChangeSerializer(changes, many=True).data,
        }
        return Response(body)

    @extend_schema(request=CompatibilityCheckSerializer, responses={200: CompatibilityResultSerializer})
    @action(detail=True, methods=["post"])
    def compatibility(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """May this schema become the subject's next version? If not, which rule fails and why.

        Checks under the subject's level (or `mode`), against the version(s) that level names;
        nothing is registered.
        """
        subject = self.get_object()
        payload = CompatibilityCheckSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        schema = services.schema_validate(payload.validated_data["schema"])
        mode = payload.validated_data.get("mode") or selectors.effective_compatibility(subject)
        problems = selectors.schema_incompatibilities(subject=subject, schema=schema, mode=mode)
        body = {
            "compatible": not problems,
            "mode": mode,
            "incompatibilities": [
                {"kind": p.kind, "path": p.path, "message": p.message, "version": p.version} for p in problems
            ],
        }
        return Response(CompatibilityResultSerializer(body).data)

    @extend_schema(request=SubjectConfigSerializer, responses={200: SubjectDetailSerializer})
    @action(detail=True, methods=["put"])
    def config(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Set the subject's compatibility level (null: back to the tenant default) and lenient policy."""
        subject = self.get_object()
        payload = SubjectConfigSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        services.subject_set_compatibility(
            actor=request.user,
            tenant=self.tenant_context.tenant,
            subject=subject.name,
            compatibility=data.get("compatibility", subject.compatibility or None),
            lenient=data.get("lenient"),
        )
        return Response(self.get_serializer(self.get_object()).data)


class _SubjectVersionsBase(TenantScopedMixin, generics.GenericAPIView):
    queryset = SchemaVersion.objects.select_related("schema", "subject", "created_by").order_by("version")
    serializer_class = SchemaVersionSerializer

    def subject(self, name: str) -> SchemaSubject:
        subject = selectors.subject_get(tenant=self.tenant_context.tenant, name=name)
        if subject is None:
            raise exceptions.NotFound(f"No subject '{name}' in this tenant.")
        return subject


class SubjectVersionsView(_SubjectVersionsBase):
    """A subject's versions: list them, or register the next one."""

    extra_error_codes = (409,)

    @extend_schema(
        operation_id="subjects_versions_list",
        parameters=[SUBJECT_PARAMETER],
        responses={200: SchemaVersionSummarySerializer(many=True)},
    )
    def get(self, request: Request, name: str) -> Response:
        """The subject's versions, oldest first."""
        versions = self.get_queryset().filter(subject=self.subject(name))
        page = self.paginate_queryset(versions)
        return self.get_paginated_response(SchemaVersionSummarySerializer(page, many=True).data)

    @extend_schema(
        operation_id="subjects_versions_create",
        parameters=[SUBJECT_PARAMETER],
        request=SchemaRegisterSerializer,
        responses={
            201: SchemaVersionSerializer,
            200: OpenApiResponse(SchemaVersionSerializer, description="The schema was already registered."),
        },
    )
    def post(self, request: Request, name: str) -> Response:
        """Register a schema as the subject's next version (creating the subject on its first).

        The subject's compatibility level decides: an incompatible schema answers 409
        `incompatible-schema` with the `incompatibilities` list. Registering a schema the
        subject already holds returns that version (200) instead of adding one.
        """
        payload = SchemaRegisterSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        schema = services.schema_validate(payload.validated_data["schema"])
        tenant = self.tenant_context.tenant
        existed = (
            self.get_queryset()
            .filter(subject__name=name.strip(), schema__fingerprint=services.fingerprint(schema))
            .exists()
        )
        version = services.schema_register(actor=request.user, tenant=tenant, subject=name, schema=schema)
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(SchemaVersionSerializer(self.get_queryset().get(pk=version.pk)).data, status=code)


class SubjectVersionDetailView(_SubjectVersionsBase):
    """One version of a subject, with its schema."""

    @extend_schema(
        operation_id="subjects_versions_retrieve",
        parameters=[SUBJECT_PARAMETER, VERSION_PARAMETER],
        responses={200: SchemaVersionSerializer, (400, PROBLEM_CONTENT_TYPE): INVALID_VERSION_RESPONSE},
    )
    def get(self, request: Request, name: str, version: str) -> Response:
        """A version by number, or the latest with `latest`."""
        row = version_or_404(self.subject(name), parse_version(version))
        return Response(SchemaVersionSerializer(self.get_queryset().get(pk=row.pk)).data)
