"""Running one watchlist over stored items (streamed in batches)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from newswatch.app import App
from scheduler.crawl import CompiledWatchlists, document
from storage.items import iter_items_since
from storage.matches import record_matches
from storage.tables import MatchRow, OutboxRow
from storage.watchlists import get_watchlist


@dataclass
class BackfillReport:
    scanned: int = 0
    matched: int = 0
    new: int = 0
    alerts: int = 0
    sample: list[tuple[str, str]] = field(default_factory=list)


def backfill(
    app: App, name: str, *, since: datetime, dry_run: bool, sample_size: int = 10
) -> BackfillReport:
    """Match items fetched since `since` against `name`; record new matches
    (each batch in its own transaction) unless `dry_run`."""
    report = BackfillReport()
    with app.transaction() as s:
        active = get_watchlist(s, name)
    # One named watchlist: if it cannot compile (stored before import refused
    # such terms), say so (InvalidWatchlistError) rather than match nothing.
    compiled = CompiledWatchlists.build([active], skip_invalid=False)
    with app.sessions() as reader:
        for batch in iter_items_since(reader, since):
            report.scanned += len(batch)
            hits = []
            for stored in batch:
                found = compiled.matcher.match(document(stored.item))
                if found:
                    hits.append((stored, found[0]))
                    if len(report.sample) < sample_size:
                        report.sample.append((stored.item.title, stored.item.url))
            report.matched += len(hits)
            if dry_run:
                ids = [st.id for st, _ in hits]
                if ids:
                    with app.transaction() as s:
                        known = s.scalar(
                            select(func.count())
                            .select_from(MatchRow)
                            .where(MatchRow.watchlist_id == active.id, MatchRow.item_id.in_(ids))
                        )
                    report.new += len(ids) - int(known or 0)
                continue
            with app.transaction() as s:
                before = _outbox_count(s, active.id)
                for stored, m in hits:
                    report.new += record_matches(
                        s,
                        stored.id,
                        [(active, m)],
                        app.now(),
                        daily_at=app.settings.daily_digest_time,
                    )
                report.alerts += _outbox_count(s, active.id) - before
    return report


def _outbox_count(session: object, watchlist_id: int) -> int:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    return int(
        session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.watchlist_id == watchlist_id)
        )
        or 0
    )
