from rest_framework.routers import SimpleRouter

from apps.compute.publication.api.views import PublicationRequestViewSet, PublishedOutputViewSet, RestatementViewSet

router = SimpleRouter()
router.register("kpi-publications", PublishedOutputViewSet, basename="kpi-publication")
router.register("publication-requests", PublicationRequestViewSet, basename="publication-request")
router.register("restatements", RestatementViewSet, basename="restatement")
urlpatterns = router.urls
