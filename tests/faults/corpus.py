"""A crawl corpus for crash and signal tests: feeds that grow, two webhook
receivers and one aiosmtpd recipient, and the bookkeeping to prove that every
expected (item, watchlist, recipient) alert arrived and how many repeats did.

Items are titled "Pantsir report N" (watchlist `air`: webhooks A and B); every
third also says "SAM" (watchlist `sam`: email to analyst@example.org).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from alerts.watchlist_files import parse_watchlists
from storage.db import transaction
from storage.sources import add_source
from storage.tables import ItemRow, MatchRow, OutboxRow, RecipientRow, SourceRow
from storage.watchlists import save_watchlists
from tests.conftest import Database
from tests.support.daemon import Feed
from tests.support.httpserver import LocalHTTPServer, Request, Response
from tests.support.smtpserver import RecordingHandler, smtp_server

EMAIL = "analyst@example.org"
_LINK = re.compile(r"http://127\.0\.0\.1:\d+/a/feed\d+\.xml/[\w-]+")


@dataclass
class Corpus:
    server: LocalHTTPServer
    smtp: RecordingHandler
    smtp_url: str
    feeds: list[Feed]
    hook_delay: float = 0.0
    received: dict[str, list[str]] = field(default_factory=lambda: {"A": [], "B": []})
    published: list[tuple[str, bool]] = field(default_factory=list)  # (url, says SAM)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _n: int = 0

    def hook(self, name: str) -> str:
        def handler(req: Request) -> Response:
            if self.hook_delay:
                time.sleep(self.hook_delay)
            with self._lock:
                self.received[name].append(json.loads(req.body)["item"]["url"])
            return 200, {"Content-Type": "text/plain"}, b"ok"

        return self.server.route(f"/hook/{name}", handler)

    def publish(self, count: int) -> None:
        """`count` new items spread over the feeds."""
        for _ in range(count):
            self._n += 1
            n = self._n
            sam = n % 3 == 0
            feed = self.feeds[n % len(self.feeds)]
            title = f"Pantsir report {n}" + (" on SAM sites" if sam else "")
            self.published.append((feed.publish(f"i{n}", title), sam))

    def seed(self, db: Database) -> None:
        yaml = (
            "watchlists:\n"
            f"  - name: air\n    terms: [Pantsir]\n    notify:\n"
            f"      - webhook: {self.hook('A')}\n      - webhook: {self.hook('B')}\n"
            f"  - name: sam\n    terms: [SAM]\n    notify:\n      - email: {EMAIL}\n"
        )
        now = datetime.now(UTC)
        with transaction(db.factory) as s:
            save_watchlists(s, parse_watchlists(yaml), now)
            for i, f in enumerate(self.feeds):
                add_source(
                    s, name=f"feed{i}", url=f.url, kind="feed", every_seconds=2,
                    links_css=None, now=now, alert_backlog=True,
                )  # fmt: skip

    # ---------------------------------------------------------------- accounting

    def expected(self) -> Counter[tuple[str, str]]:
        keys: Counter[tuple[str, str]] = Counter()
        for url, sam in self.published:
            keys[(url, "A")] = keys[(url, "B")] = 1
            if sam:
                keys[(url, "email")] = 1
        return keys

    def emails(self) -> list[tuple[str, str]]:
        """(item URL, Message-ID) of every email received."""
        out = []
        for m in self.smtp.messages:
            found = _LINK.search(m.data.decode("utf-8", "replace"))
            assert found, m.data[:500]
            out.append((found.group(0), str(m.message["Message-ID"])))
        return out

    def delivered(self) -> Counter[tuple[str, str]]:
        got: Counter[tuple[str, str]] = Counter()
        with self._lock:
            for name, urls in self.received.items():
                got.update((u, name) for u in urls)
        got.update((u, "email") for u, _ in self.emails())
        return got


@contextmanager
def corpus(feeds: int = 4) -> Iterator[Corpus]:
    server = LocalHTTPServer().start()
    try:
        with smtp_server() as (handler, url):
            yield Corpus(
                server, handler, url, [Feed(server, f"/feed{i}.xml") for i in range(feeds)]
            )
    finally:
        server.stop()


def expire_leases(db: Database) -> None:
    """What the passing of the lease time does after a killed process: its source
    and outbox leases become free. (Leases last minutes; the suite does not wait.)"""
    with transaction(db.factory) as s:
        s.execute(update(SourceRow).values(lease_owner=None, lease_until=None))
        s.execute(
            update(OutboxRow)
            .where(OutboxRow.status == "pending")
            .values(lease_owner=None, lease_until=None)
        )


def make_due(db: Database) -> None:
    """What the passing of the backoff time does: pending alerts become due."""
    with transaction(db.factory) as s:
        s.execute(
            update(OutboxRow)
            .where(OutboxRow.status == "pending")
            .values(next_attempt_at=datetime.now(UTC))
        )


def outbox_counts(db: Database) -> Counter[str]:
    with transaction(db.factory) as s:
        rows = s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
        return Counter({status: int(n) for status, n in rows})


def consistency_problems(db: Database) -> list[str]:
    """Nothing half-written: every match has one outbox row per recipient of its
    watchlist; every outbox row's item and match agree; no source left leased."""
    problems = []
    with transaction(db.factory) as s:
        recipients = Counter(
            wl for (wl,) in s.execute(select(RecipientRow.watchlist_id).where(RecipientRow.active))
        )
        per_match = Counter(m for (m,) in s.execute(select(OutboxRow.match_id)))
        for mid, wl, _item in s.execute(
            select(MatchRow.id, MatchRow.watchlist_id, MatchRow.item_id)
        ):
            if per_match[mid] != recipients[wl]:
                problems.append(
                    f"match {mid} has {per_match[mid]} outbox rows, not {recipients[wl]}"
                )
        bad = s.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .join(MatchRow, MatchRow.id == OutboxRow.match_id)
            .where(MatchRow.item_id != OutboxRow.item_id)
        )
        if bad:
            problems.append(f"{bad} outbox rows point at another item than their match")
        orphans = s.scalar(
            select(func.count())
            .select_from(ItemRow)
            .where(ItemRow.source_id.not_in(select(SourceRow.id)))
        )
        if orphans:
            problems.append(f"{orphans} items without a source")
        polled = s.scalar(
            select(func.count())
            .select_from(SourceRow)
            .where(SourceRow.id.in_(select(ItemRow.source_id)), SourceRow.last_polled_at.is_(None))
        )
        if polled:
            problems.append(f"{polled} sources have items but no recorded poll")
    return problems
