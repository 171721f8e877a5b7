from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.trust.api.views import EvidenceRecordViewSet, EvidenceVerifyView

router = SimpleRouter()
router.register("evidence", EvidenceRecordViewSet, basename="evidence-record")
# Before the router's routes, whose detail pattern would take "verify" for an id.
urlpatterns = [path("evidence/verify/", EvidenceVerifyView.as_view(), name="evidence-verify"), *router.urls]
