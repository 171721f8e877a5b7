"""Text normalization shared by the index writer and both search back ends.

One tokenizer for PostgreSQL and SQLite, so the same words match on both: lower-cased runs
of letters and digits (Unicode-aware); everything else separates words. `store_sales`,
`store-sales` and "Store Sales" all give `store sales`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Shorter words are matched exactly or as a prefix, never by typo tolerance ("cat" is not "car").
MIN_FUZZY_LENGTH = 4
MAX_QUERY_WORDS = 12


def tokens(text: str) -> list[str]:
    """The words of `text`, lower-cased, in order (duplicates kept)."""
    return [word.casefold() for word in _WORD.findall(text or "")]


def distinct_tokens(*texts: str) -> list[str]:
    """The distinct words of all `texts`, in order of first appearance."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in tokens(text):
            seen.setdefault(word, None)
    return list(seen)


def facet_text(facets: dict[str, object]) -> str:
    """The facet values as one searchable text (a tag or a domain is worth finding)."""
    parts: list[str] = []
    for value in facets.values():
        values: Iterable[object] = value if isinstance(value, list | tuple) else [value]
        parts.extend(str(item) for item in values if item not in (None, ""))
    return " ".join(parts)
