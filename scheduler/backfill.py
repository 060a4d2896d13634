"""Running one watchlist over stored items (streamed in batches)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from scheduler.compiled_watchlists import CompiledWatchlists, document
from scheduler.context import BackfillContext
from scheduler.story_assignment import assign_unassigned


@dataclass
class BackfillReport:
    scanned: int = 0
    matched: int = 0
    new: int = 0
    alerts: int = 0
    unalerted: int = 0  # --dry-run: matched before with no alert yet (a first poll's old items)
    stories: int = 0  # items given a story as the backfill passed them
    backend: str = ""  # the automaton chosen for the stored text's volume
    sample: list[tuple[str, str]] = field(default_factory=list)


def backfill(
    ctx: BackfillContext, name: str, *, since: datetime, dry_run: bool, sample_size: int = 10
) -> BackfillReport:
    """Match items fetched since `since` against `name`; record new matches
    (each batch in its own transaction) unless `dry_run`."""
    report = BackfillReport()
    with ctx.store.transaction() as tx:
        active = tx.get_watchlist(name)
    # One named watchlist: if it cannot compile (stored before import refused
    # such terms), say so (InvalidWatchlistError) rather than match nothing.
    # Hyperscan only when the stored text is large enough to pay back its
    # compile (7 s at 10,000 terms); a small backfill runs on pyahocorasick.
    volume = ctx.store.text_bytes_since(since)
    compiled = CompiledWatchlists.build([active], skip_invalid=False, expected_bytes=volume)
    report.backend = compiled.matcher.backend
    for batch in ctx.store.items_since(since):
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
                with ctx.store.transaction() as tx:
                    known = tx.count_matches(active.id, ids)
                    if active.recipient_ids:
                        report.unalerted += tx.count_matches_without_alerts(active.id, ids)
                report.new += len(ids) - known
            continue
        if ctx.stories is not None:  # stories first: an outbox row may read its item's story
            ids = [st.id for st in batch]
            report.stories += assign_unassigned(ctx.stories, ctx.store, ctx.clock, ids=ids)
        with ctx.store.transaction() as tx:
            before = tx.count_alerts(active.id)
            for stored, m in hits:
                report.new += tx.record_matches(
                    stored.id, [(active, m)], ctx.clock(), daily_at=ctx.daily_digest_at
                )
            report.alerts += tx.count_alerts(active.id) - before
    return report
