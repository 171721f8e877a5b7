from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.consumption.exports.api.views import ExportJobViewSet, export_view_for
from apps.consumption.exports.datasets import REGISTRY

router = SimpleRouter()
router.register("export-jobs", ExportJobViewSet, basename="export-job")
urlpatterns = [
    *(path(f"exports/{name}/", export_view_for(dataset).as_view(), name=f"export-{name}")
      for name, dataset in sorted(REGISTRY.items())),
    *router.urls,
]  # fmt: skip
