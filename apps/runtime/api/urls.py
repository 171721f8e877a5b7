from django.urls import path

from apps.runtime.api.views import ModuleListView

urlpatterns = [path("modules/", ModuleListView.as_view(), name="module-list")]
