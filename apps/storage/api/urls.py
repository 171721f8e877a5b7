from rest_framework.routers import SimpleRouter

from apps.storage.api.views import GoldenDataPointViewSet

router = SimpleRouter()
router.register("golden-data-points", GoldenDataPointViewSet, basename="golden-data-point")
urlpatterns = router.urls
