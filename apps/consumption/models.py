"""Consumption's models live in one package per module; Django finds them through this file."""

# Each module package appends its own import here (webhooks, exports, catalog).
