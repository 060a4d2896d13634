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

# For one-shot commands. Hyperscan scans faster but compiles slowly (~1 s for
# 200 terms with aliases, ~5 s for 1,000; pyahocorasick: 4 and 16 ms), and a
# crawl matches a few MB of new text, which pyahocorasick does in well under
# a second at that size. The daemon compiles once per watchlist change and
# keeps the default (Hyperscan where available). Results are identical.
ONE_SHOT_BACKEND: BackendName = "aho"


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
    ) -> CompiledWatchlists:
        """Compile the active watchlists; one that cannot compile is skipped
        with an error naming it, and the others match (never stop the crawl).
        With `skip_invalid=False` it raises InvalidWatchlistError instead."""
        matcher = compile_watchlists(
            [a.watchlist for a in actives], backend, skip_invalid=skip_invalid
        )
        for name, reason in matcher.skipped:
            log.error("watchlist_skipped status=invalid watchlist=%s error=%r", name, reason)
        return cls(matcher, {a.watchlist.name: a for a in actives})


def document(item: Item) -> Document:
    return Document(title=item.title, summary=item.summary, body=item.text, language=item.language)


def load_watchlists(store: Store, backend: BackendName | None = None) -> CompiledWatchlists:
    with store.transaction() as tx:
        return CompiledWatchlists.build(tx.active_watchlists(), backend)


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
