"""Consumption's API routes: each module package contributes its own urlpatterns."""

urlpatterns: list = []
