"""Watchlists compiled for matching, and recompiled only when one changes.

Compiling is the expensive part (one automaton over every term); the crawl
use-case compiles once per run, the daemon once per watchlist change
(`WatchlistCache`, a version check of one aggregate query per tick).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.alert_records import Document
from alerts.matching.backends import BackendName
from alerts.matching.engine import Matcher, compile_watchlists
from crawler.crawl_records import Item
from storage.protocol import Store
from storage.watchlists import ActiveWatchlist

log = logging.getLogger("newswatch.crawl")

# For one-shot commands that cannot know their volume in advance (`match`
# of one text, the Scrapy pipeline's items one by one). Hyperscan scans
# faster but compiles slowly (~0.65 ms per term: 1.3 s at 1,000 terms, 7.2 s
# at 10,000; pyahocorasick 0.01-0.13 s). Commands that can estimate their
# text (backfill: the stored bytes; crawl: per source claimed) pass
# `expected_bytes` instead and get `choose_backend`'s pick. The daemon
# compiles once per watchlist change and matches for its whole life, so it
# keeps the default (Hyperscan where available). Results are identical.
ONE_SHOT_BACKEND: BackendName = "aho"

# The new text one claimed source brings to a crawl, for `choose_backend`: a
# first poll of a 30-entry feed with summaries (~1 KB of text each). A
# re-crawl brings less (unchanged items are not matched), so this errs towards
# pyahocorasick only when the crawl is large.
CRAWL_BYTES_PER_SOURCE = 30_000


@dataclass(frozen=True)
class CompiledWatchlists:
    matcher: Matcher
    by_name: dict[str, ActiveWatchlist]

    @classmethod
    def build(
        cls,
        actives: Sequence[ActiveWatchlist],
        backend: BackendName | None = None,
        *,
        skip_invalid: bool = True,
        expected_bytes: int | None = None,
    ) -> CompiledWatchlists:
        """Compile the active watchlists; one that cannot compile is skipped
        with an error naming it, and the others match (never stop the crawl).
        With `skip_invalid=False` it raises InvalidWatchlistError instead.
        `expected_bytes` (the text a one-shot run will match) lets the default
        backend be chosen by `choose_backend`: pyahocorasick unless Hyperscan's
        compile pays for itself on that volume."""
        matcher = compile_watchlists(
            [a.watchlist for a in actives],
            backend,
            skip_invalid=skip_invalid,
            expected_bytes=expected_bytes,
        )
        log.debug("watchlists_compiled backend=%s", matcher.backend)
        for name, reason in matcher.skipped:
            log.error("watchlist_skipped status=invalid watchlist=%s error=%r", name, reason)
        return cls(matcher, {a.watchlist.name: a for a in actives})


def document(item: Item) -> Document:
    return Document(title=item.title, summary=item.summary, body=item.text, language=item.language)


def load_watchlists(
    store: Store, backend: BackendName | None = None, *, expected_bytes: int | None = None
) -> CompiledWatchlists:
    with store.transaction() as tx:
        actives = tx.active_watchlists()
    return CompiledWatchlists.build(actives, backend, expected_bytes=expected_bytes)


class WatchlistCache:
    """Compiled watchlists, recompiled only when a watchlist was imported or removed.

    The version check is one aggregate query, cheap enough to run on every
    tick that has sources to poll, so an imported watchlist applies to the
    next poll.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.version: tuple[object, ...] | None = None
        self.compiled: CompiledWatchlists | None = None

    def get(self) -> CompiledWatchlists:
        with self.store.transaction() as tx:
            version = tx.watchlists_version()
        if self.compiled is None or version != self.version:
            self.compiled = load_watchlists(self.store)
            self.version = version
        return self.compiled
