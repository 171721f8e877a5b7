"""Reads of the search index: ranked hits with facet counts, on PostgreSQL or the portable fallback."""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from django.db.models.expressions import RawSQL

from apps.utilities.search import registry
from apps.utilities.search.choices import SearchAudienceChoices
from apps.utilities.search.models import SearchDocument
from apps.utilities.search.services import TS_CONFIG
from apps.utilities.search.text import MAX_QUERY_WORDS, MIN_FUZZY_LENGTH, tokens

# At most this many matches are ranked, filtered and counted; more is not discovery, it is a dump.
MAX_CANDIDATES = 2000
# The fallback's typo tolerance: difflib's ratio ("revnue"/"revenue" is 0.92).
FUZZY_RATIO = 0.8
SNIPPET_CHARS = 160


@dataclass(frozen=True)
class SearchHit:
    kind: str
    object_key: str
    title: str
    url: str
    score: float
    facets: dict[str, Any]
    snippet: str
    updated_at: datetime


@dataclass(frozen=True)
class SearchResults:
    query: str
    total: int
    hits: list[SearchHit]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def search(
    *,
    tenant: Any,
    query: str,
    facets: dict[str, list[str]] | None = None,
    kinds: Iterable[str] | None = None,
    limit: int = 20,
    members: bool = True,
) -> SearchResults:
    """The tenant's documents matching every word of `query`, best first, with facet counts.

    A word matches a document when a word of it starts with the query word, or, for words of
    four letters or more, when it is a near miss (a typo): pg_trgm word similarity on
    PostgreSQL, difflib's ratio elsewhere. Title hits rank above body hits. `facets` narrows the
    hits (values of one facet OR-ed, facets AND-ed) and the counts describe the narrowed hits.
    `members=False` (a consumer) leaves out documents meant for tenant members only. An empty
    query lists every document, by title.
    """
    words = tokens(query)[:MAX_QUERY_WORDS]
    queryset = SearchDocument.objects.for_tenant(tenant)
    kinds = [kind for kind in (kinds or []) if kind]
    if kinds:
        queryset = queryset.filter(kind__in=kinds)
    if not members:
        queryset = queryset.filter(audience=SearchAudienceChoices.LISTED)
    if not words:
        scored = [(row, 0.0) for row in _rows(queryset.order_by("title", "id")[:MAX_CANDIDATES])]
    elif connection.vendor == "postgresql":
        scored = _postgres(queryset, words)
    else:
        scored = _fallback(queryset, words)
    _add_live_facets(tenant, scored)
    wanted = {name: {str(v) for v in values if v not in (None, "")} for name, values in (facets or {}).items()}
    wanted = {name: values for name, values in wanted.items() if values}
    kept = [(row, score) for row, score in scored if _facets_match(row["facets"], wanted)]
    kept.sort(key=lambda item: (-item[1], item[0]["title"].casefold(), item[0]["id"]))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row, _ in kept:
        for name, value in row["facets"].items():
            for item in value if isinstance(value, list) else [value]:
                counts[name][str(item)] += 1
    hits = [
        SearchHit(
            kind=row["kind"],
            object_key=row["object_key"],
            title=row["title"],
            url=row["url"],
            score=round(score, 4),
            facets=row["facets"],
            snippet=_snippet(row["body"], words),
            updated_at=row["updated_at"],
        )
        for row, score in kept[: max(limit, 0)]
    ]
    facet_counts = {
        name: sorted(counter.items(), key=lambda item: (-item[1], item[0])) for name, counter in sorted(counts.items())
    }
    return SearchResults(query=query, total=len(kept), hits=hits, facets=facet_counts)


_COLUMNS = ("id", "kind", "object_key", "title", "body", "facets", "url", "updated_at")


def _rows(queryset: models.QuerySet) -> list[dict[str, Any]]:
    rows = []
    for row in queryset.values(*_COLUMNS):
        row["facets"] = {**(row["facets"] or {}), "kind": row["kind"]}
        rows.append(row)
    return rows


# --- scoring, shared by both back ends ----------------------------------------------------------
class _Scorer:
    """Scores a document's words against the query words; None when a query word has no match.

    Per query word: an exact word scores 1, a word it is a prefix of 0.9, a near miss (four
    letters or more, difflib ratio ≥ FUZZY_RATIO) 0.7 × the ratio. A title match counts 0.6 of
    that, a match anywhere (title, body, facet values) 0.25, so title hits rank first.
    """

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.cache: dict[tuple[str, str], float] = {}

    def closeness(self, word: str, term: str) -> float:
        key = (word, term)
        if key not in self.cache:
            if term == word:
                value = 1.0
            elif term.startswith(word):
                value = 0.9
            elif len(word) >= MIN_FUZZY_LENGTH and abs(len(term) - len(word)) <= 3:
                ratio = difflib.SequenceMatcher(None, word, term).ratio()
                value = 0.7 * ratio if ratio >= FUZZY_RATIO else 0.0
            else:
                value = 0.0
            self.cache[key] = value
        return self.cache[key]

    def score(self, title_terms: str, terms: str) -> float | None:
        title_words, all_words = title_terms.split(), terms.split()
        total = 0.0
        for word in self.words:
            anywhere = max((self.closeness(word, term) for term in all_words), default=0.0)
            if anywhere <= 0:
                return None
            in_title = max((self.closeness(word, term) for term in title_words), default=0.0)
            total += 0.6 * in_title + 0.25 * anywhere
        return total


# --- PostgreSQL: candidates from the GIN indexes (tsvector, pg_trgm) ----------------------------
# Trigram similarity is lenient on purpose ("stroe"/"store" is only 0.33): it selects candidates
# through the index, and the scorer keeps only the real near misses.
TRIGRAM_CANDIDATE_THRESHOLD = 0.3


def _postgres(queryset: models.QuerySet, words: list[str]) -> list[tuple[dict[str, Any], float]]:
    conditions, params = [], []
    for word in words:
        prefix = f"'{word}':*"  # words are letters and digits only: nothing to escape
        if len(word) >= MIN_FUZZY_LENGTH:
            # `<%` is pg_trgm's word-similarity operator; it is what the trigram index on `terms` answers.
            conditions.append("(search_vector @@ to_tsquery(%s::regconfig, %s) OR %s <%% terms)")
            params += [TS_CONFIG, prefix, word]
        else:
            conditions.append("search_vector @@ to_tsquery(%s::regconfig, %s)")
            params += [TS_CONFIG, prefix]
    any_word = " | ".join(f"'{word}':*" for word in words)
    # Constant SQL fragments; every value (the words) goes in as a parameter.
    matches = RawSQL(" AND ".join(conditions), params, output_field=models.BooleanField())  # noqa: S611
    rank = RawSQL("ts_rank(search_vector, to_tsquery(%s::regconfig, %s))", [TS_CONFIG, any_word])
    candidates = (
        queryset.filter(matches)
        .annotate(rank=rank)
        .order_by("-rank", "id")
        .values(*_COLUMNS, "rank", "title_terms", "terms")[:MAX_CANDIDATES]
    )
    scorer = _Scorer(words)
    scored = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", [str(TRIGRAM_CANDIDATE_THRESHOLD)]
        )
        rows = list(candidates)
    for row in rows:
        score = scorer.score(row.pop("title_terms"), row.pop("terms"))
        rank_value = float(row.pop("rank") or 0.0)
        if score is None:
            continue
        row["facets"] = {**(row["facets"] or {}), "kind": row["kind"]}
        scored.append((row, score + 0.1 * rank_value))  # ts_rank adds term frequency and weights
    return scored


# --- the portable fallback: every document's words through the scorer --------------------------
def _fallback(queryset: models.QuerySet, words: list[str]) -> list[tuple[dict[str, Any], float]]:
    """Reads the words of every document of the tenant (within the kinds asked): fine for catalogs."""
    scorer = _Scorer(words)
    matched: dict[int, float] = {}
    for row in queryset.values("id", "title_terms", "terms").order_by("id").iterator(chunk_size=500):
        score = scorer.score(row["title_terms"], row["terms"])
        if score is not None:
            matched[row["id"]] = score
    top = sorted(matched.items(), key=lambda item: -item[1])[:MAX_CANDIDATES]
    by_id = {row["id"]: row for row in _rows(SearchDocument.objects.filter(pk__in=[pk for pk, _ in top]))}
    return [(by_id[pk], score) for pk, score in top]


# --- facets and snippets ------------------------------------------------------------------------
def _add_live_facets(tenant: Any, scored: list[tuple[dict[str, Any], float]]) -> None:
    keys_by_kind: dict[str, list[str]] = defaultdict(list)
    for row, _ in scored:
        keys_by_kind[row["kind"]].append(row["object_key"])
    for kind, keys in keys_by_kind.items():
        provider = registry.live_facets_for(kind)
        if provider is None:
            continue
        values = provider(tenant, keys)
        for row, _ in scored:
            if row["kind"] == kind:
                row["facets"].update(values.get(row["object_key"], {}))


def _facets_match(facets: dict[str, Any], wanted: dict[str, set[str]]) -> bool:
    for name, values in wanted.items():
        have = facets.get(name)
        have_set = {str(item) for item in have} if isinstance(have, list) else ({str(have)} if have else set())
        if not have_set & values:
            return False
    return True


def _snippet(body: str, words: list[str]) -> str:
    """About SNIPPET_CHARS of the body around the first query word found (the start otherwise)."""
    text = " ".join((body or "").split())
    if len(text) <= SNIPPET_CHARS:
        return text
    lowered = text.casefold()
    positions = [lowered.find(word) for word in words if lowered.find(word) >= 0]
    start = max(min(positions) - SNIPPET_CHARS // 4, 0) if positions else 0
    piece = text[start : start + SNIPPET_CHARS]
    return ("…" if start > 0 else "") + piece + ("…" if start + SNIPPET_CHARS < len(text) else "")


def document_keys(*, tenant: Any, kind: str, prefix: str = "") -> list[str]:
    """The object keys of the tenant's `kind` documents (starting with `prefix`), for owners pruning their own."""
    queryset = SearchDocument.objects.for_tenant(tenant).filter(kind=kind)
    if prefix:
        queryset = queryset.filter(object_key__startswith=prefix)
    return list(queryset.order_by("object_key").values_list("object_key", flat=True))
