"""Confluent Schema Registry paths, mounted under /api/v1/registry/.

Confluent's paths have no trailing slash; one is tolerated. A subject is any text without "/"
(`contract.orders`, `orders-value`); clients percent-encode it.
"""

from django.urls import re_path

from apps.utilities.confluent import views

SUBJECT = r"(?P<subject>[^/]+)"
VERSION = r"(?P<version>[^/]+)"
SCHEMA_ID = r"(?P<schema_id>[^/]+)"

urlpatterns = [
    re_path(r"^subjects/?$", views.SubjectListView.as_view(), name="registry-subjects"),
    re_path(rf"^subjects/{SUBJECT}/?$", views.SubjectLookupView.as_view(), name="registry-subject"),
    re_path(rf"^subjects/{SUBJECT}/versions/?$", views.SubjectVersionsView.as_view(), name="registry-versions"),
    re_path(rf"^subjects/{SUBJECT}/versions/{VERSION}/?$", views.SubjectVersionView.as_view(), name="registry-version"),
    re_path(
        rf"^subjects/{SUBJECT}/versions/{VERSION}/schema/?$",
        views.SubjectVersionSchemaView.as_view(),
        name="registry-version-schema",
    ),
    re_path(rf"^schemas/ids/{SCHEMA_ID}/?$", views.SchemaByIdView.as_view(), name="registry-schema"),
    re_path(rf"^schemas/ids/{SCHEMA_ID}/schema/?$", views.SchemaByIdSchemaView.as_view(), name="registry-schema-raw"),
    re_path(
        rf"^schemas/ids/{SCHEMA_ID}/subjects/?$",
        views.SchemaByIdSubjectsView.as_view(),
        name="registry-schema-subjects",
    ),
    re_path(
        rf"^schemas/ids/{SCHEMA_ID}/versions/?$",
        views.SchemaByIdVersionsView.as_view(),
        name="registry-schema-versions",
    ),
    re_path(
        rf"^compatibility/subjects/{SUBJECT}/versions/{VERSION}/?$",
        views.CompatibilityVersionView.as_view(),
        name="registry-compatibility-version",
    ),
    re_path(
        rf"^compatibility/subjects/{SUBJECT}/versions/?$",
        views.CompatibilityAllView.as_view(),
        name="registry-compatibility",
    ),
    re_path(r"^config/?$", views.GlobalConfigView.as_view(), name="registry-config"),
    re_path(rf"^config/{SUBJECT}/?$", views.SubjectConfigView.as_view(), name="registry-subject-config"),
]
