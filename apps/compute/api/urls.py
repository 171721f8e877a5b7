from rest_framework.routers import SimpleRouter

from apps.compute.api.views import IngestionBatchViewSet, NormalizationRuleViewSet, SourceViewSet
from apps.compute.kpis.api.urls import urlpatterns as kpi_urls
from apps.compute.publication.api.urls import urlpatterns as publication_urls

router = SimpleRouter()
router.register("sources", SourceViewSet, basename="source")
router.register("batches", IngestionBatchViewSet, basename="batch")
router.register("normalization-rules", NormalizationRuleViewSet, basename="normalization-rule")
urlpatterns = router.urls
urlpatterns += publication_urls
urlpatterns += kpi_urls
