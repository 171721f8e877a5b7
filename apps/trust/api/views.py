from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from apps.kernel.api.problems import InsufficientScope
from apps.kernel.api.viewsets import TenantReadOnlyViewSet, TenantScopedMixin
from apps.kernel.roles import RoleChoices
from apps.trust import selectors
from apps.trust.api.serializers import EvidenceRecordSerializer, EvidenceVerifySerializer
from apps.trust.models import EvidenceRecord


class EvidenceReaderMixin:
    """The ledger is for tenant admins and auditors.

    TenantAccess only checks the `read` scope, which every role has; the role check runs
    after it (authenticated, tenant chosen and active) and before any row is looked up, so
    it answers the same 403 whatever the request names.
    """

    reader_roles = frozenset({RoleChoices.ADMIN, RoleChoices.AUDITOR})
    tenant_context: Any

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        context = self.tenant_context
        if not context.has_role(self.reader_roles):
            raise InsufficientScope(
                f"The evidence ledger is readable by tenant admins and auditors; your role "
                f"'{context.effective_role}' in tenant '{context.tenant.slug}' does not allow it."
            )


class EvidenceRecordViewSet(EvidenceReaderMixin, TenantReadOnlyViewSet):
    """The tenant's evidence ledger, newest entry first. Filter with `kind` or `kind__startswith`."""

    queryset = EvidenceRecord.objects.select_related("actor").order_by("-sequence")
    serializer_class = EvidenceRecordSerializer
    filterset_fields = {"kind": ["exact", "startswith"]}


class EvidenceVerifyView(EvidenceReaderMixin, TenantScopedMixin, generics.GenericAPIView):
    """Walk the tenant's chain and report the first entry that does not hold, if any."""

    queryset = EvidenceRecord.objects.all()
    serializer_class = EvidenceVerifySerializer
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(responses={200: EvidenceVerifySerializer})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        result = selectors.evidence_verify(tenant=self.tenant_context.tenant)
        return Response(EvidenceVerifySerializer(result.as_dict()).data)
