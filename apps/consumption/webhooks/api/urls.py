from rest_framework.routers import SimpleRouter

from apps.consumption.webhooks.api.views import WebhookDeliveryViewSet, WebhookEndpointViewSet

router = SimpleRouter()
router.register("webhooks", WebhookEndpointViewSet, basename="webhookendpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhookdelivery")
urlpatterns = router.urls
