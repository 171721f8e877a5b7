from rest_framework.routers import SimpleRouter

from apps.compute.api.views import IngestionBatchViewSet, SourceViewSet

router = SimpleRouter()
router.register("sources", SourceViewSet, basename="source")
router.register("batches", IngestionBatchViewSet, basename="batch")
urlpatterns = router.urls
