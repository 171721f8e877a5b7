from rest_framework.routers import SimpleRouter

from apps.host.api.views import (
    ContractVersionViewSet,
    DataContractViewSet,
    MembershipViewSet,
    PolicyViewSet,
    TenantViewSet,
)

router = SimpleRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("contracts", DataContractViewSet, basename="contract")
router.register("contract-versions", ContractVersionViewSet, basename="contract-version")
router.register("policies", PolicyViewSet, basename="policy")
urlpatterns = router.urls
