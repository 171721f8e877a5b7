from django.urls import path

from apps.access import views

urlpatterns = [path("portal/tenant/", views.switch_tenant, name="portal-switch-tenant")]
