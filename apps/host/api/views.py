from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.host import selectors, services
from apps.host.api.serializers import (
    ContractVersionSerializer,
    ContractVersionWriteSerializer,
    DataContractCreateSerializer,
    DataContractSerializer,
    DecisionSerializer,
    LifecycleActionSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    PolicyEvaluateSerializer,
    PolicySerializer,
    PolicyWriteSerializer,
    SchemaChangeSerializer,
    TenantSerializer,
)
from apps.host.models import ContractVersion, DataContract, Membership, Policy, Tenant
from apps.host.odcs.importer import contract_import
from apps.host.odcs.mapping import version_to_odcs
from apps.host.odcs.parsing import dump
from apps.host.policies.evaluation import PolicySubject, evaluate
from apps.kernel.api.parsers import YAML_PARSERS
from apps.kernel.api.problems import Conflict
from apps.kernel.api.renderers import YamlTextRenderer
from apps.kernel.api.serializers import documented_variant
from apps.kernel.api.viewsets import TenantModelViewSet, TenantReadOnlyViewSet


class TenantViewSet(TenantReadOnlyViewSet):
    """The tenant of the request (the token's tenant, or the one chosen in the portal)."""

    queryset = Tenant.objects.all()
    serializer_class = TenantSerializer
    lookup_field = "slug"


class MembershipViewSet(mixins.UpdateModelMixin, mixins.DestroyModelMixin, TenantModelViewSet):
    """Who belongs to the tenant, with which role: readable by members, managed with the admin scope."""

    queryset = Membership.objects.select_related("user", "tenant")
    serializer_class = MembershipSerializer
    scope_map = {action: "admin" for action in ("create", "partial_update", "destroy")}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    extra_error_codes = (409,)

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = MembershipCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        tenant, user = self.tenant_context.tenant, payload.validated_data["username"]
        if Membership.objects.filter(tenant=tenant, user=user).exists():
            raise Conflict(
                f"'{user.username}' is already a member of '{tenant.slug}'; PATCH the membership to change its role."
            )
        membership = services.membership_set(
            actor=request.user, tenant=tenant, user=user, role=payload.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MembershipUpdateSerializer, responses={200: MembershipSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        payload = MembershipUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        membership = services.membership_set(
            actor=request.user, tenant=membership.tenant, user=membership.user, role=payload.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data)

    def perform_destroy(self, instance: Membership) -> None:
        services.membership_remove(actor=self.request.user, membership=instance)


# --- data contracts -------------------------------------------------------------------------
class DataContractViewSet(mixins.UpdateModelMixin, TenantModelViewSet):
    """Data contracts of the tenant. Creating and renaming need the write scope."""

    queryset = DataContract.objects.select_related("owner").prefetch_related(
        Prefetch("versions", queryset=ContractVersion.objects.filter(status="active"), to_attr="active_versions")
    )
    serializer_class = DataContractSerializer
    lookup_field = "key"
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = ("domain",)

    @extend_schema(request=DataContractCreateSerializer, responses={201: DataContractSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = DataContractCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        contract = services.contract_create(actor=request.user, tenant=self.tenant_context.tenant,
                                            owner=request.user, **payload.validated_data)  # fmt: skip
        return Response(DataContractSerializer(contract).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"application/yaml": OpenApiTypes.OBJECT},
        responses={201: ContractVersionSerializer},
        parameters=[OpenApiParameter("key", str, description="Contract key (default: derived from the document).")],
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=YAML_PARSERS)
    def import_odcs(self, request: Request) -> Response:
        """Create a draft version (and the contract if new) from an ODCS v3 YAML body.

        An invalid document answers 400 `invalid-odcs` with every problem's path and line."""
        if not isinstance(request.data, str):
            raise serializers.ValidationError({"non_field_errors": ["Send the ODCS document as YAML."]})
        version = contract_import(actor=request.user, tenant=self.tenant_context.tenant, text=request.data,
                                  key=request.query_params.get("key") or None)  # fmt: skip
        return Response(ContractVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DataContractCreateSerializer(partial=True), responses={200: DataContractSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contract = self.get_object()
        payload = DataContractCreateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        contract = services.contract_update(actor=request.user, contract=contract, **payload.validated_data)
        return Response(DataContractSerializer(contract).data)


# What each write really takes: the views validate with one all-optional serializer, then check.
VERSION_CREATE = documented_variant(ContractVersionWriteSerializer, "ContractVersionCreateSerializer",
                                    required=("contract", "version"))  # fmt: skip
VERSION_UPDATE = documented_variant(ContractVersionWriteSerializer, "ContractVersionUpdateSerializer",
                                    exclude=("contract",))  # fmt: skip
REJECT_ACTION = documented_variant(LifecycleActionSerializer, "RejectActionSerializer", required=("comment",),
                                   exclude=("confirm_breaking",))  # fmt: skip
POLICY_CREATE = documented_variant(PolicyWriteSerializer, "PolicyCreateSerializer",
                                   required=("kind", "name", "parameters"))  # fmt: skip
POLICY_UPDATE = documented_variant(PolicyWriteSerializer, "PolicyUpdateSerializer", exclude=("kind", "contract"))
POLICY_REVISE = documented_variant(PolicyWriteSerializer, "PolicyReviseSerializer", required=("parameters",),
                                   exclude=("kind", "contract", "description"))  # fmt: skip


class ContractVersionViewSet(TenantModelViewSet):
    """Versions of the tenant's contracts. Drafts are created and edited here; the lifecycle
    actions (propose, approve, reject, activate, deprecate, retire) are POSTs on a version."""

    queryset = ContractVersion.objects.select_related(
        "contract", "proposed_by", "decided_by", "schema_version"
    ).prefetch_related("fields", "quality_rules__field", "transitions__actor")
    serializer_class = ContractVersionSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = {"contract__key": ["exact"], "status": ["exact", "in"]}
    extra_error_codes = (409,)

    @extend_schema(request=VERSION_CREATE, responses={201: ContractVersionSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = ContractVersionWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        key, version = data.pop("contract", None), data.pop("version", None)
        errors = {
            name: ["This field is required."] for name, value in (("contract", key), ("version", version)) if not value
        }
        if errors:
            raise serializers.ValidationError(errors)
        contract = DataContract.objects.for_tenant(self.tenant_context.tenant).filter(key=key).first()
        if contract is None:
            raise serializers.ValidationError({"contract": [f"No contract '{key}' in this tenant."]})
        row = services.contract_version_create(actor=request.user, contract=contract, version=version,
                                               fields=data.pop("fields", []), **data)  # fmt: skip
        return Response(self.get_serializer(self.get_queryset().get(pk=row.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VERSION_UPDATE, responses={200: ContractVersionSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        version = self.get_object()
        payload = ContractVersionWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        if "contract" in data:
            raise serializers.ValidationError({"contract": ["A version cannot move to another contract."]})
        if "version" in data:
            data["semver"] = data.pop("version")
        services.contract_version_update(actor=request.user, version=version, **data)
        return Response(self.get_serializer(self.get_queryset().get(pk=version.pk)).data)

    def _lifecycle(self, request: Request, action_name: str) -> Response:
        version = self.get_object()
        payload = LifecycleActionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        kwargs: dict[str, Any] = {"comment": payload.validated_data["comment"]}
        if action_name == "propose":
            kwargs["confirm_breaking"] = payload.validated_data["confirm_breaking"]
        services.LIFECYCLE_SERVICES[action_name](actor=request.user, version=version, **kwargs)
        return Response(self.get_serializer(self.get_queryset().get(pk=version.pk)).data)

    @extend_schema(request=LifecycleActionSerializer, responses={200: ContractVersionSerializer})
    @action(detail=True, methods=["post"])
    def propose(self, request: Request, pk: str | None = None) -> Response:
        """Ask for approval; refused (409) when the schema breaks compatibility without a raised, confirmed major."""
        return self._lifecycle(request, "propose")

    @extend_schema(request=LifecycleActionSerializer, responses={200: ContractVersionSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Four eyes: never by the proposer; needs the tenant admin role or the approver right."""
        return self._lifecycle(request, "approve")

    @extend_schema(request=REJECT_ACTION, responses={200: ContractVersionSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Back to draft, with the reviewer's comment (required)."""
        return self._lifecycle(request, "reject")

    @extend_schema(request=LifecycleActionSerializer, responses={200: ContractVersionSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Make it the contract's active version; the previous one is deprecated."""
        return self._lifecycle(request, "activate")

    @extend_schema(request=LifecycleActionSerializer, responses={200: ContractVersionSerializer})
    @action(detail=True, methods=["post"])
    def deprecate(self, request: Request, pk: str | None = None) -> Response:
        return self._lifecycle(request, "deprecate")

    @extend_schema(request=LifecycleActionSerializer, responses={200: ContractVersionSerializer})
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        """Retired versions are read-only forever."""
        return self._lifecycle(request, "retire")

    # The YAML text is one ODCS document: a client that parses it gets an object.
    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], renderer_classes=[YamlTextRenderer])
    def odcs(self, request: Request, pk: str | None = None) -> Response:
        """The version as an ODCS v3.1.0 YAML document (validates against the official schema)."""
        version = self.get_object()
        filename = f"{version.contract.key}-{version.version}.odcs.yaml"
        return Response(
            dump(version_to_odcs(version)), headers={"Content-Disposition": f'inline; filename="{filename}"'}
        )

    @extend_schema(
        parameters=[OpenApiParameter("against", str, description="Version to compare with (default: the one before).")],
        responses={200: SchemaChangeSerializer(many=True)},
    )
    # A plain list, neither paginated nor filtered: the list's filters and pages do not apply here.
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def diff(self, request: Request, pk: str | None = None) -> Response:
        """Readable schema changes from another version of the same contract to this one."""
        version = self.get_object()
        changes = selectors.contract_version_diff(version=version, against=request.query_params.get("against"))
        return Response(SchemaChangeSerializer(changes, many=True).data)


# --- policies -------------------------------------------------------------------------------
class PolicyViewSet(mixins.UpdateModelMixin, TenantModelViewSet):
    """The tenant's policies and the platform-wide ones that apply to it (read-only to tenants).

    Drafts need the write scope; activating, retiring and revising need the admin scope.
    """

    queryset = Policy.objects.select_related("contract", "tenant")
    serializer_class = PolicySerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = ("kind", "status")
    scope_map = {"activate": "admin", "retire": "admin", "revise": "admin", "evaluate": "read"}
    extra_error_codes = (409,)

    @extend_schema(request=POLICY_CREATE, responses={201: PolicySerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = PolicyWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        missing = {name: ["This field is required."] for name in ("kind", "name", "parameters") if name not in data}
        if missing:
            raise serializers.ValidationError(missing)
        contract = self._contract(data.pop("contract", None))
        policy = services.policy_create(actor=request.user, tenant=self.tenant_context.tenant, contract=contract,
                                        **data)  # fmt: skip
        return Response(PolicySerializer(policy).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=POLICY_UPDATE, responses={200: PolicySerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        policy = self.get_object()
        payload = PolicyWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = {k: v for k, v in payload.validated_data.items() if k in ("name", "description", "parameters")}
        policy = services.policy_update(actor=request.user, policy=policy, **data)
        return Response(PolicySerializer(policy).data)

    @extend_schema(request=None, responses={200: PolicySerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Put a draft in force; the active policy of the same kind and scope is retired."""
        policy = services.policy_activate(actor=request.user, policy=self.get_object())
        return Response(PolicySerializer(policy).data)

    @extend_schema(request=None, responses={200: PolicySerializer})
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        policy = services.policy_retire(actor=request.user, policy=self.get_object())
        return Response(PolicySerializer(policy).data)

    @extend_schema(request=POLICY_REVISE, responses={201: PolicySerializer})
    @action(detail=True, methods=["post"])
    def revise(self, request: Request, pk: str | None = None) -> Response:
        """A new draft version with new parameters; the current version stays in force until it is activated."""
        current = self.get_object()  # first: another tenant's policy is not found, whatever the body
        payload = PolicyWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        if "parameters" not in payload.validated_data:
            raise serializers.ValidationError({"parameters": ["This field is required."]})
        policy = services.policy_revise(
            actor=request.user,
            policy=current,
            parameters=payload.validated_data["parameters"],
            name=payload.validated_data.get("name"),
        )
        return Response(PolicySerializer(policy).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PolicyEvaluateSerializer, responses={200: DecisionSerializer})
    @action(detail=False, methods=["post"])
    def evaluate(self, request: Request) -> Response:
        """Simulate: the decision the policies would give for an action, changing nothing."""
        payload = PolicyEvaluateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        contract = self._contract(payload.validated_data.get("contract"))
        subject = PolicySubject(self.tenant_context.tenant, contract, payload.validated_data["facts"])
        decision = evaluate(payload.validated_data["action"], subject)
        return Response(DecisionSerializer(decision).data)

    def _contract(self, key: str | None) -> DataContract | None:
        if not key:
            return None
        contract = DataContract.objects.for_tenant(self.tenant_context.tenant).filter(key=key).first()
        if contract is None:
            raise serializers.ValidationError({"contract": [f"No contract '{key}' in this tenant."]})
        return contract
