"""API base classes shared by every module app: permissions, viewsets, errors, schema."""
