from rest_framework.routers import SimpleRouter

from apps.host.api.views import MembershipViewSet, TenantViewSet

router = SimpleRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("memberships", MembershipViewSet, basename="membership")
urlpatterns = router.urls
