"""Schema registry URLs: the native API under /api/v1/subjects/, Confluent's dialect under /api/v1/registry/."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from apps.utilities.api.views import SubjectVersionDetailView, SubjectVersionsView, SubjectViewSet
from apps.utilities.search.api import SearchView

router = SimpleRouter()
router.register("subjects", SubjectViewSet, basename="subject")

urlpatterns = [
    path("subjects/<str:name>/versions/", SubjectVersionsView.as_view(), name="subject-versions"),
    path("subjects/<str:name>/versions/<str:version>/", SubjectVersionDetailView.as_view(), name="subject-version"),
    *router.urls,
    # A client of Confluent Schema Registry's REST API works against this prefix unchanged.
    path("registry/", include("apps.utilities.confluent.urls")),
    # Discovery: ranked search over the tenant's catalog, with facets.
    path("search/", SearchView.as_view(), name="search"),
]
