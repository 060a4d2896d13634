"""Matches and the outbox rows they owe, written together.

`record_matches` is the only writer of both tables' new rows: a match and
one outbox row per active recipient are inserted in the caller's
transaction, each with ON CONFLICT DO NOTHING on its unique key, so running
it twice for the same item (a re-poll, a restart, a second daemon, a
backfill) creates nothing twice. A match stored without alerts (a first
poll's old item) gets its outbox rows when it is recorded again with alerts
(`backfill`): every match is owed its alerts, once.

Under `stories: fold` the outbox row also carries the item's story, and the
partial unique key (story, watchlist, recipient) lets only the first matching
item of a story in: a later item of the same story is matched (and listed
with its story) but owes no second alert. An item without a story yet
(`story_id` NULL) alerts on its own, as under `each`: never lose an alert.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime, time
from typing import Any

from sqlalchemy import Connection, Dialect, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from alerts.address_keys import recipient_key
from alerts.alert_records import StoredMatch, WatchlistMatch
from alerts.digests import digest_period
from storage.items import core_insert_ignore
from storage.tables import ItemRow, MatchRow, OutboxRow, SourceRow, WatchlistRow
from storage.watchlists import ActiveWatchlist

_MATCHES: Table = MatchRow.__table__  # type: ignore[assignment]
_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
_ITEMS: Table = ItemRow.__table__  # type: ignore[assignment]
# Core statements built once per dialect (a Session runs them as plain Core
# statements: no ORM bulk-insert layer, no statement building per match).
_INSERT_MATCH = {
    name: core_insert_ignore(name, _MATCHES, ["item_id", "watchlist_id"]).returning(_MATCHES.c.id)
    for name in ("sqlite", "postgresql")
}
# INSERT … ON CONFLICT DO NOTHING over EVERY unique key of the outbox: the
# (item, watchlist, recipient) key and, for fold rows, the partial (story,
# watchlist, recipient) one. A conflict on either means the alert is owed
# already, so the row is skipped, never an error.
_INSERT_OUTBOX = {
    "sqlite": sqlite.insert(_OUTBOX).on_conflict_do_nothing(),
    "postgresql": postgresql.insert(_OUTBOX).on_conflict_do_nothing(),
}
_MATCH_ID = select(_MATCHES.c.id).where(
    _MATCHES.c.item_id == bindparam("item_id"),
    _MATCHES.c.watchlist_id == bindparam("watchlist_id"),
)
_STORY_OF = select(_ITEMS.c.story_id).where(_ITEMS.c.id == bindparam("item_id"))


def record_matches(
    session: Session,
    item_id: int,
    found: Sequence[tuple[ActiveWatchlist, WatchlistMatch]],
    now: datetime,
    *,
    daily_at: time = time(0, 0),
    alert: bool = True,
) -> int:
    """Store the matches of one item and their outbox rows; return how many
    matches were new. `alert=False` (an old item of a first poll,
    scheduler.first_poll) stores the matches and owes no alert."""
    new = 0
    dialect = session.get_bind().dialect.name
    driver = _DriverInserts(session.connection()) if dialect == "sqlite" else None
    story_id = (
        session.scalar(_STORY_OF, {"item_id": item_id})
        if any(a.watchlist.stories == "fold" for a, _ in found)
        else None
    )
    for active, match in found:
        values = {
            "item_id": item_id,
            "watchlist_id": active.id,
            "terms": list(match.terms),
            "hits": [asdict(h) for h in match.hits[:50]],
            "snippets": list(match.snippets),
            "matched_at": now,
        }
        if driver is not None:
            match_id = driver.match(values)
        else:
            match_id = session.scalar(_INSERT_MATCH[dialect], values)
        if match_id is None:
            if not alert:
                continue
            # Matched before. Its alerts may never have been queued (a first
            # poll's old item is matched with alert=False): a backfill owes
            # them now. Rows already queued are skipped by ON CONFLICT below.
            match_id = session.scalar(_MATCH_ID, {"item_id": item_id, "watchlist_id": active.id})
            if match_id is None:  # pragma: no cover - the conflict names this row
                continue
        else:
            new += 1
        period, due = digest_period(active.watchlist.digest, now, daily_at)
        if not alert:
            continue
        rows = [
            {
                "match_id": match_id,
                "item_id": item_id,
                "watchlist_id": active.id,
                "recipient_id": rid,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": due,
                "created_at": now,
                "digest_period": period,
                "story_id": story_id if active.watchlist.stories == "fold" else None,
                "address_key": recipient_key(recipient),
            }
            for rid, recipient in active.recipient_ids
        ]
        if rows and driver is not None:
            driver.outbox(rows)
        elif rows:
            session.execute(_INSERT_OUTBOX[dialect], rows)
    return new


_MATCH_COLUMNS = ("item_id", "watchlist_id", "terms", "hits", "snippets", "matched_at")
_OUTBOX_COLUMNS = (
    "match_id",
    "item_id",
    "watchlist_id",
    "recipient_id",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "digest_period",
    "story_id",
    "address_key",
)


def _placeholders(columns: Sequence[str]) -> str:
    return f"({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


# `_INSERT_MATCH["sqlite"]` and `_INSERT_OUTBOX["sqlite"]` as driver SQL.
_SQLITE_MATCH = (
    f"INSERT INTO matches {_placeholders(_MATCH_COLUMNS)} "
    "ON CONFLICT (item_id, watchlist_id) DO NOTHING RETURNING id"
)
_SQLITE_OUTBOX = f"INSERT INTO outbox {_placeholders(_OUTBOX_COLUMNS)} ON CONFLICT DO NOTHING"


@functools.lru_cache(maxsize=8)
def _processors(dialect: Dialect) -> dict[str, list[Any]]:
    """Each column's bind processor (None: the value as it is), per table."""
    return {
        table.name: [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
        ]
        for table, columns in ((_MATCHES, _MATCH_COLUMNS), (_OUTBOX, _OUTBOX_COLUMNS))
    }


class _DriverInserts:
    """SQLite's match and outbox inserts as driver SQL on the session's
    connection: the same rows as the Core statements, without compiling or
    processing them per call (two statements per match: ~60-70 µs of CPU
    saved per match, see docs/notes/crawl-profile.md step 9). Parameters go
    through each column type's own bind processor (JSON, UTC datetimes);
    an error in them is raised as the compiled statement raises it. Runs no
    do_orm_execute hook: storage.repository's record_matches writes the
    buffered polls first."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.processors = _processors(conn.dialect)

    def _params(
        self, table: str, columns: Sequence[str], values: dict[str, Any]
    ) -> tuple[Any, ...]:
        try:
            return tuple(
                value if process is None else process(value)
                for value, process in zip(
                    (values[name] for name in columns), self.processors[table], strict=True
                )
            )
        except Exception as e:
            name = f"{type(e).__module__}.{type(e).__name__}"
            sql = _SQLITE_MATCH if table == "matches" else _SQLITE_OUTBOX
            raise StatementError(f"({name}) {e}", sql, None, e) from e

    def match(self, values: dict[str, Any]) -> int | None:
        params = self._params("matches", _MATCH_COLUMNS, values)
        row = self.conn.exec_driver_sql(_SQLITE_MATCH, params).first()
        return None if row is None else int(row[0])

    def outbox(self, rows: list[dict[str, Any]]) -> None:
        params = [self._params("outbox", _OUTBOX_COLUMNS, row) for row in rows]
        self.conn.exec_driver_sql(_SQLITE_OUTBOX, params)


def list_matches(
    session: Session,
    *,
    watchlist: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> Iterator[StoredMatch]:
    stmt = (
        select(MatchRow, WatchlistRow.name, ItemRow, SourceRow.name)
        .join(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id)
        .join(ItemRow, ItemRow.id == MatchRow.item_id)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .order_by(MatchRow.matched_at.desc(), MatchRow.id.desc())
    )
    if watchlist is not None:
        stmt = stmt.where(WatchlistRow.name == watchlist)
    if since is not None:
        stmt = stmt.where(MatchRow.matched_at >= since)
    if limit is not None:
        stmt = stmt.limit(limit)
    for m, wl_name, item, source_name in session.execute(stmt.execution_options(yield_per=500)):
        yield stored_match(m, item, source_name, wl_name)


def stored_match(m: MatchRow, item: ItemRow, source: str, watchlist: str) -> StoredMatch:
    """Rows to the record that `matches`, alerts and webhooks all render."""
    return StoredMatch(
        id=m.id,
        watchlist=watchlist,
        terms=tuple(m.terms),
        snippets=tuple(m.snippets),
        matched_at=m.matched_at,
        item_id=item.id,
        item_url=item.url,
        item_title=item.title,
        source_name=source,
        published=item.published,
        language=item.language,
        story_id=item.story_id,
    )
