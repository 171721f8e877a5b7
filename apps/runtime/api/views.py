from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.kernel.api.permissions import AuthenticatedPrincipal
from apps.runtime.api.serializers import ModuleRegistrySerializer
from apps.runtime.registry import module_registry


class ModuleListView(APIView):
    """The module registry: categories, modules, interfaces, dependencies and live health."""

    permission_classes = [AuthenticatedPrincipal]

    @extend_schema(responses={200: ModuleRegistrySerializer}, operation_id="modules_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"results": module_registry()})
