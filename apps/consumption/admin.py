"""Consumption's portal pages live in each module package's admin.py; Django autodiscovers only this file."""
