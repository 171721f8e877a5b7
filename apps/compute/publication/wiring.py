"""Imported by the compute app's ready(): the publication portal pages, audit registration, event handlers
and the lineage obligation checker, which register themselves on import."""

from apps.compute.publication import admin, audit, handlers, obligations  # noqa: F401
