from rest_framework.routers import SimpleRouter

from apps.consumption.catalog.api.views import DataProductViewSet

router = SimpleRouter()
router.register("products", DataProductViewSet, basename="product")

urlpatterns = router.urls
