"""The schema registry's native Aurum API (problem details, OpenAPI documented)."""
