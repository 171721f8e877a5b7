"""Governed KPIs: definitions with versions under four-eyes, targets with tolerance bands, and their
set-based, incremental, as-of-reproducible computation into storage's KPI values.

`models` (definitions, versions, targets, the transition log), `choices`, `expressions` (the derived-KPI
arithmetic, parsed without eval), `validation` (a version against its contract and the other KPIs),
`services` (every write: authoring, lifecycle, targets, compute), `engine` (the SQL), `selectors`
(reads: values, lineage), `admin`, `api/`.
"""
