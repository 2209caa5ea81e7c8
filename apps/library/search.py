"""The one text matcher: accent-insensitive, typo-tolerant, ranked. Used by /api/v1/search, the `q=` filters
of the track and album lists, the artist list's `q=`, and any other front-end (OpenSubsonic's search3).

Both sides go through the same SQL function, `revenge_search_norm` (lower(unaccent(x)), migration
library.0005_search), so 'Motörhead', 'MOTORHEAD' and 'motorhead' are one string. A term matches a text
when the normalised text
  0. equals it,
  1. starts with it                      (btree text_pattern_ops index),
  2. has a word starting with it         (trigram GIN index, LIKE '% term%'),
  3. is similar to it                    (trigram GIN index, pg_trgm's `%` operator: similarity >= 0.3, its
                                          default; 'beetles' finds 'The Beatles' at 0.33, 'motorhaed'
                                          finds 'Motörhead' at 0.43; not word_similarity's `<%`, which
                                          would also find a typo inside a long title but cost several
                                          times more per candidate row),
ranked in that order (MatchRank), then by similarity, then shorter texts first (SEARCH_ORDER).
Tiers 2 and 3 need a letter or digit (a term of symbols only has no trigrams, and a trigram index would
then read every entry); tier 3 needs FUZZY_MIN_CHARS (a short term is similar to too much).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Case, Expression, F, FloatField, Func, IntegerField, TextField, Value, When
from django.db.models.functions import Length
from django.db.models.sql.compiler import SQLCompiler

SEARCH_QUERY_MIN_CHARS = 2
SEARCH_QUERY_MAX_CHARS = 200
SEARCH_LIMIT_MAX = 50
FUZZY_MIN_CHARS = 4
# pg_trgm's default threshold for `%` (the `q=` filters use the server's setting; selectors.search sets it).
SIMILARITY_MIN = 0.3
_SPACES = re.compile(r"\s+")


class SearchTermInvalid(ValueError):
    """Why a search string cannot be searched for (the API answers 400 with it)."""


@dataclass(frozen=True)
class SearchTerm:
    """A search string, cleaned (trimmed, inner whitespace collapsed) and checked."""

    text: str

    @property
    def has_word(self) -> bool:
        return any(char.isalnum() for char in self.text)

    @property
    def fuzzy(self) -> bool:
        return self.has_word and len(self.text) >= FUZZY_MIN_CHARS

    @property
    def like_text(self) -> str:
        """The text with LIKE's wildcards and escape character taken literally."""
        return self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_term(raw: str) -> SearchTerm:
    """The checked term, or SearchTermInvalid saying why (too short, too long, a NUL character)."""
    if "\x00" in raw:
        raise SearchTermInvalid("The search text may not contain NUL characters.")
    if len(raw) > SEARCH_QUERY_MAX_CHARS * 4:  # before the work below on a huge string
        raise SearchTermInvalid(f"Ensure the search text has no more than {SEARCH_QUERY_MAX_CHARS} characters.")
    text = _SPACES.sub(" ", raw).strip()
    if len(text) < SEARCH_QUERY_MIN_CHARS:
        raise SearchTermInvalid(f"Ensure the search text has at least {SEARCH_QUERY_MIN_CHARS} characters.")
    if len(text) > SEARCH_QUERY_MAX_CHARS:
        raise SearchTermInvalid(f"Ensure the search text has no more than {SEARCH_QUERY_MAX_CHARS} characters.")
    return SearchTerm(text)


class SearchNorm(Func):
    """revenge_search_norm(text): what the indexes of migration 0005 are built on."""

    function = "revenge_search_norm"
    output_field = TextField()


class ArrayConcat(Func):
    """a || b, for two arrays."""

    arg_joiner = " || "
    template = "(%(expressions)s)"


class SearchNormArray(Func):
    """revenge_search_norm_array(text[]): a list of names as one normalised string."""

    function = "revenge_search_norm_array"
    output_field = TextField()


Sql = tuple[str, list[Any]]


def match_sql(text: Sql, term: SearchTerm, *, prefix_index: bool = True) -> Sql:
    """The condition that `text` (SQL of a revenge_search_norm* expression, and its params) matches the term.

    `prefix_index`: whether a btree text_pattern_ops index serves the whole-text prefix; without one (a list
    of names) that tier is left to the trigram index, which needs a letter or digit like tier 2."""
    sql, params = text
    parts: list[str] = []
    values: list[Any] = []
    if prefix_index or term.has_word:
        # Exact is a prefix too: one condition, one index range.
        parts.append(f"{sql} LIKE revenge_search_norm(%s)")
        values += [*params, f"{term.like_text}%"]
    if term.has_word:
        parts.append(f"{sql} LIKE revenge_search_norm(%s)")
        values += [*params, f"% {term.like_text}%"]
    if term.fuzzy:
        parts.append(f"revenge_search_norm(%s) %% {sql}")
        values += [term.text, *params]
    if not parts:
        return "FALSE", []
    return "(" + " OR ".join(parts) + ")", values


def rank_sql(text: Sql, term: SearchTerm) -> Sql:
    """0 equal, 1 prefix, 2 word prefix, 3 similar, 4 not matched here (a track found by its artist or album);
    lower is better (see the module's docstring)."""
    sql, params = text
    rendered = (
        f"CASE WHEN {sql} = revenge_search_norm(%s) THEN 0 "
        f"WHEN {sql} LIKE revenge_search_norm(%s) THEN 1 "
        f"WHEN {sql} LIKE revenge_search_norm(%s) THEN 2 "
    )
    values = [*params, term.text, *params, f"{term.like_text}%", *params, f"% {term.like_text}%"]
    if term.fuzzy:
        rendered += f"WHEN revenge_search_norm(%s) %% {sql} THEN 3 "
        values += [term.text, *params]
    return rendered + "ELSE 4 END", values


def similarity_sql(text: Sql, term: SearchTerm) -> Sql:
    sql, params = text
    return f"similarity(revenge_search_norm(%s), {sql})", [term.text, *params]


# The tiers one by one, for selectors.search: it asks for the best tier first and stops as soon as a kind has
# its page, which most searches do after the first (an index range on the prefix). Each tier's condition
# leaves out the rows of the tiers above it, so a row is found once, in its best tier.
TIER_PREFIX, TIER_WORD, TIER_SIMILAR = 1, 2, 3


def words_sql(column: str) -> str:
    """The text's words as a tsvector: what the word indexes of migration library.0007 hold."""
    return f"to_tsvector('simple'::regconfig, revenge_search_words({column}))"


def words_match_sql(column: str, term: SearchTerm) -> Sql:
    """Every word of the term starts a word of the text (in any order): a superset of tiers 1 and 2 that a
    word index (GIN on the tsvector) answers from short posting lists, where the trigram index reads every
    row sharing a trigram. Rechecked with the tier's own LIKE."""
    return f"{words_sql(column)} @@ revenge_search_prefix_query(%s)", [term.text]


def tier_sql(column: str, term: SearchTerm, tier: int, *, words_index: bool) -> Sql | None:
    """The condition that a normalised text column meets this tier and none above it; None when the term
    cannot meet it (a word prefix needs a letter or digit, similarity FUZZY_MIN_CHARS). `words_index`: the
    column has a word index (library.0007), which serves the word prefix instead of the trigram index."""
    prefix = (f"{column} LIKE revenge_search_norm(%s)", [f"{term.like_text}%"])
    if tier == TIER_PREFIX:
        return prefix
    if not term.has_word:
        return None
    word = (f"{column} LIKE revenge_search_norm(%s)", [f"% {term.like_text}%"])
    if tier == TIER_WORD:
        parts = [words_match_sql(column, term)] if words_index else []
        parts += [word, (f"NOT {prefix[0]}", prefix[1])]
    elif term.fuzzy:
        parts = [
            (f"revenge_search_norm(%s) %% {column}", [term.text]),
            (f"NOT {prefix[0]}", prefix[1]),
            (f"NOT {word[0]}", word[1]),
        ]
    else:
        return None
    return " AND ".join(sql for sql, _ in parts), [value for _, params in parts for value in params]


class _TermExpression(Expression):
    """An ORM expression over one normalised source expression and a term, rendered by a *_sql function."""

    def __init__(self, normalised: Expression | F, term: SearchTerm) -> None:
        super().__init__()
        self.normalised = normalised
        self.term = term

    def get_source_expressions(self) -> list[Any]:
        return [self.normalised]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.normalised,) = exprs

    def render(self, text: Sql) -> Sql:
        raise NotImplementedError

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        # Resolved by then (resolve_expression turned an F into a column).
        sql, params = compiler.compile(self.normalised)  # type: ignore[arg-type]
        return self.render((sql, list(params)))


class Matches(_TermExpression):
    """`.filter(Matches(F("search_title"), term))`: the term matches the text (any tier)."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, normalised: Expression | F, term: SearchTerm, *, prefix_index: bool = True) -> None:
        super().__init__(normalised, term)
        self.prefix_index = prefix_index

    def render(self, text: Sql) -> Sql:
        return match_sql(text, self.term, prefix_index=self.prefix_index)


class MatchRank(_TermExpression):
    output_field = IntegerField()

    def render(self, text: Sql) -> Sql:
        return rank_sql(text, self.term)


class MatchSimilarity(_TermExpression):
    output_field = FloatField()

    def render(self, text: Sql) -> Sql:
        return similarity_sql(text, self.term)


# Best first: by tier, then similarity within a matched tier (a track found only by its artist or album
# has tier 4, and its title's similarity says nothing), then shorter titles. Tracks of the same tier and
# similarity (all those found by their artist) in album order.
_SIMILARITY_IF_MATCHED = Case(When(search_rank__lt=4, then=F("search_similarity")), default=Value(0.0)).desc()
SEARCH_ORDER = ("search_rank", _SIMILARITY_IF_MATCHED, Length("title"), "id")
TRACK_SEARCH_ORDER = (
    "search_rank",
    _SIMILARITY_IF_MATCHED,
    F("album_id").asc(nulls_last=True),
    "disc_number",
    "track_number",
    Length("title"),
    "id",
)
