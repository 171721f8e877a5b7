from rest_framework.routers import SimpleRouter

from apps.compute.kpis.api.views import KpiDefinitionViewSet, KpiTargetViewSet, KpiValueViewSet, KpiVersionViewSet

router = SimpleRouter()
router.register("kpi-definitions", KpiDefinitionViewSet, basename="kpi-definition")
router.register("kpi-versions", KpiVersionViewSet, basename="kpi-version")
router.register("kpi-targets", KpiTargetViewSet, basename="kpi-target")
router.register("kpi-values", KpiValueViewSet, basename="kpi-value")
urlpatterns = router.urls
