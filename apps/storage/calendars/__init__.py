"""Calendars as governed objects: fiscal, ISO-week, retail and custom calendars with period tables.

`engine` computes the periods (pure Python), `models` stores them one row per period and day,
`services` writes (generation, period closing), `alignment` reads (lookup, previous period,
same period last year, overlaps between calendars).
"""
