"""How apps above utilities plug into discovery without utilities importing them.

- A *reindexer* rebuilds the documents of the kinds it owns (`manage.py search_reindex`):
  `register_reindexer(("contract", "contract_field"), reindex_contracts)`, where the function
  takes `tenant_slug` (None: every tenant) and returns how many documents it wrote.
- A *live facet* is computed when a search runs instead of stored, because it changes with
  time rather than with events (a product's freshness):
  `register_live_facets("product", freshness_of)`, where the function takes the tenant and the
  object keys of the hits and returns `{key: {facet: value}}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Reindexer = Callable[..., int]
LiveFacets = Callable[[Any, list[str]], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class ReindexerEntry:
    kinds: tuple[str, ...]
    func: Reindexer


_reindexers: dict[str, ReindexerEntry] = {}
_live_facets: dict[str, LiveFacets] = {}


def register_reindexer(kinds: Iterable[str], func: Reindexer) -> Reindexer:
    """Make `func(tenant_slug=…)` the rebuilder of the documents of `kinds`."""
    entry = ReindexerEntry(tuple(kinds), func)
    _reindexers[f"{func.__module__}.{func.__qualname__}"] = entry
    return func


def reindexers() -> list[ReindexerEntry]:
    return [_reindexers[name] for name in sorted(_reindexers)]


def register_live_facets(kind: str, func: LiveFacets) -> LiveFacets:
    """Compute facets of `kind` documents at query time with `func(tenant, keys)`."""
    _live_facets[kind] = func
    return func


def live_facets_for(kind: str) -> LiveFacets | None:
    return _live_facets.get(kind)
