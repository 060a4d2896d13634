"""Pure watchlist and match records (no I/O, no ORM).

A watchlist holds rules: a `Term` (canonical spelling plus aliases) or a
`Query` (boolean expression over words and phrases). Strings are kept as the
user wrote them, `${NAME}` references included, so export gives back what was
imported; references are resolved only where a value is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Channel = Literal["email", "slack", "webhook"]
Digest = Literal["none", "hourly", "daily"]
# `fold`: one alert per (story, watchlist, recipient); `each`: one per matching item.
StoryMode = Literal["fold", "each"]
Field = Literal["title", "summary", "body"]


@dataclass(frozen=True, slots=True)
class Term:
    term: str
    aliases: tuple[str, ...] = ()
    case_sensitive: bool | None = None  # None: capitals-only terms are case-sensitive
    # Per-alias overrides of `case_sensitive`, parallel to `aliases` (None:
    # the term's); empty when no alias has its own. Issue #17: `Панцирь`
    # case-sensitive while `Pantsir` is not.
    alias_case: tuple[bool | None, ...] = ()

    @property
    def label(self) -> str:
        return self.term

    def spellings(self) -> tuple[tuple[str, bool | None], ...]:
        """(spelling, case_sensitive) for the term and each alias."""
        cases = self.alias_case + (None,) * (len(self.aliases) - len(self.alias_case))
        pairs = zip(self.aliases, cases, strict=False)
        own = [(a, self.case_sensitive if c is None else c) for a, c in pairs]
        return ((self.term, self.case_sensitive), *own)

    def alias_entries(self) -> list[str | dict[str, str | bool]]:
        """`aliases` as the YAML file and the rules table hold them: text, or
        `{alias, case_sensitive}` for an alias with its own case rule."""
        cases = self.alias_case + (None,) * (len(self.aliases) - len(self.alias_case))
        return [
            a if c is None else {"alias": a, "case_sensitive": c}
            for a, c in zip(self.aliases, cases, strict=False)
        ]


@dataclass(frozen=True, slots=True)
class Query:
    query: str
    case_sensitive: bool | None = None

    @property
    def label(self) -> str:
        return self.query


Rule = Term | Query


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: Channel
    target: str  # address or URL, possibly "${NAME}"
    secret: str | None = None  # webhook HMAC secret, possibly "${NAME}"


@dataclass(frozen=True, slots=True)
class Watchlist:
    name: str
    rules: tuple[Rule, ...]
    exclude: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    notify: tuple[Recipient, ...] = ()
    digest: Digest = "none"
    stories: StoryMode = "each"
    examples_match: tuple[str, ...] = ()
    examples_no_match: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """The text matched: an item's fields as plain text, plus its language."""

    title: str
    summary: str = ""
    body: str = ""
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One place where a rule matched: which spelling, in which field, where."""

    rule: str  # the canonical term or the query text
    spelling: str  # the term or alias that was found
    field: Field
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class WatchlistMatch:
    watchlist: str
    terms: tuple[str, ...]  # canonical labels of the rules that matched, in rule order
    hits: tuple[Hit, ...]
    snippets: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class StoredMatch:
    """A match as read back from storage, joined with its item, for output."""

    id: int
    watchlist: str
    terms: tuple[str, ...]
    snippets: tuple[str, ...]
    matched_at: datetime
    item_id: int
    item_url: str
    item_title: str
    source_name: str
    published: datetime
    language: str | None
    story_id: int | None = None  # the item's story (None: not assigned yet)


@dataclass(frozen=True, slots=True)
class AlsoReported:
    """Another outlet's item of the same story, as an alert names it."""

    source: str
    language: str | None
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class StoryContext:
    """An alerted item's story as known at send time: the render functions get
    it as data (they read nothing). `also` holds the story's items from OTHER
    sources, one per (source, language), in published order; `en_title` is the
    story's English headline (None when it has no English item yet)."""

    story_id: int
    title: str
    en_title: str | None
    also: tuple[AlsoReported, ...] = ()
