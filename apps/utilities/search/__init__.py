"""Discovery: a generic, tenant-scoped full-text index that other apps feed and query.

The index knows nothing of products or contracts. An app describes each of its objects as a
`SearchDocument` (kind, key, title, body, facets, url, audience) through
`services.search_index_upsert` and removes it with `services.search_index_remove`; readers call
`selectors.search`. Apps above utilities plug in through `registry`: a reindexer per kind
(`manage.py search_reindex`) and live facets computed at query time (a product's freshness).
"""
