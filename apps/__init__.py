"""Aurum's module apps: one Django app per module category, plus a small shared kernel."""
