from rest_framework.routers import SimpleRouter

from apps.storage.api.calendars import CalendarPeriodViewSet, CalendarViewSet
from apps.storage.api.views import GoldenDataPointViewSet

router = SimpleRouter()
router.register("golden-data-points", GoldenDataPointViewSet, basename="golden-data-point")
router.register("calendars", CalendarViewSet, basename="calendar")
router.register("calendar-periods", CalendarPeriodViewSet, basename="calendar-period")
urlpatterns = router.urls
