"""Item storage: batched insert-if-new, and reading items back."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from crawler.crawl_records import Item, StoredItem
from storage.db import refresh_statistics
from storage.search_index import mark_pending
from storage.tables import Base, ItemRow, MatchRow, SourceRow

BATCH = 500
# Stored (and so alerted) text is capped: a feed's 2 MB "title" must not become
# a 2 MB Slack message or digest (issue #16). Matching sees the whole text first.
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 10_000


def cap(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def insert_ignore(session: Session, table: type[Base], conflict: list[str]) -> Insert:
    """An INSERT that skips rows violating the unique key `conflict`, per dialect."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict)
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict)
    raise NotImplementedError(name)  # pragma: no cover


def core_insert_ignore(dialect: str, table: Table, conflict: list[str]) -> Insert:
    """`insert_ignore` on the Core table: a Session executes it as a plain
    (Core) statement, skipping the ORM's bulk-insert layer, which cost more
    CPU than SQLite itself on the crawl's item inserts. Callers build it once
    per dialect (the same statement object, compiled and cached once)."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict)
    raise NotImplementedError(dialect)  # pragma: no cover


_ITEMS: Table = ItemRow.__table__  # type: ignore[assignment]
# INSERT … ON CONFLICT (url) DO NOTHING RETURNING id, url, per dialect
_STORE_ITEMS = {
    name: core_insert_ignore(name, _ITEMS, ["url"]).returning(_ITEMS.c.id, _ITEMS.c.url)
    for name in ("sqlite", "postgresql")
}


def store_items(
    session: Session, source_id: int, items: Sequence[Item], fetched_at: datetime
) -> dict[str, int]:
    """Insert the items that are new (by canonical URL); return {url: id} of the new ones.

    One statement per batch: `INSERT … ON CONFLICT DO NOTHING RETURNING id`
    tells us exactly which items were really new, even when another process
    stored the same article a moment before.
    """
    unique = list({it.url: it for it in items}.values())
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        new_ids = _store_sqlite(session.connection(), source_id, unique, fetched_at)
    else:
        new_ids = {}
        stmt = _STORE_ITEMS[dialect.name]
        for start in range(0, len(unique), BATCH):
            rows = [_row(source_id, it, fetched_at) for it in unique[start : start + BATCH]]
            new_ids.update((url, item_id) for item_id, url in session.execute(stmt, rows))
    # Not indexed here (that doubled the crawl's CPU per item): listed as
    # pending, which every search scans, until the daemon's search-index job
    # (or `newswatch search`) indexes them (storage.search_index).
    mark_pending(session, list(new_ids.values()))
    refresh_statistics(session, "items", len(new_ids))
    return new_ids


# The columns `_row` fills, in the order of `_sqlite_insert`'s placeholders.
_COLUMNS = (
    "source_id",
    "url",
    "guid",
    "title",
    "summary",
    "body",
    "published",
    "fetched_at",
    "language",
    "content_hash",
)


@functools.lru_cache(maxsize=64)
def _sqlite_insert(rows: int) -> str:
    """`_STORE_ITEMS["sqlite"]` as SQLAlchemy's insertmanyvalues renders it for
    `rows` rows: one multi-row VALUES (rows inserted, so ids given, in order)."""
    values = ", ".join(["(" + ", ".join("?" * len(_COLUMNS)) + ")"] * rows)
    return (
        f"INSERT INTO items ({', '.join(_COLUMNS)}) VALUES {values} "
        "ON CONFLICT (url) DO NOTHING RETURNING id, url"
    )


def _store_sqlite(
    conn: Connection, source_id: int, unique: Sequence[Item], fetched_at: datetime
) -> dict[str, int]:
    """`store_items`' inserts on SQLite, the same rows as the Core statement
    (`_STORE_ITEMS`), sent as driver SQL: the compiled statement's per-row
    parameter processing and insertmanyvalues rewriting cost more CPU than
    SQLite's own insert (~12 µs per item, bench/crawl.py's first crawl). The
    datetimes go through the column type's own bind processor, rows are
    sent in pages of the dialect's parameter limit as insertmanyvalues
    does, and errors are SQLAlchemy's (exec_driver_sql wraps them alike)."""
    when = _ITEMS.c.published.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    assert when is not None  # UTCDateTime: aware datetimes to SQLite's text form
    page = min(BATCH, conn.dialect.insertmanyvalues_max_parameters // len(_COLUMNS))
    new_ids: dict[str, int] = {}
    fetched: Any = None
    for start in range(0, len(unique), page):
        chunk = unique[start : start + page]
        sql = _sqlite_insert(len(chunk))
        params: list[Any] = []
        try:
            fetched = when(fetched_at) if fetched is None else fetched
            for it in chunk:
                params += (
                    source_id,
                    it.url,
                    it.guid,
                    cap(it.title, MAX_TITLE_CHARS),
                    cap(it.summary, MAX_SUMMARY_CHARS),
                    it.text,
                    when(it.published),
                    fetched,
                    it.language,
                    it.content_hash,
                )
        except Exception as e:  # a naive datetime: raised as the compiled statement raises it
            name = f"{type(e).__module__}.{type(e).__name__}"
            raise StatementError(f"({name}) {e}", sql, None, e) from e
        result = conn.exec_driver_sql(sql, tuple(params))
        new_ids.update((url, item_id) for item_id, url in result)
    return new_ids


def _row(source_id: int, it: Item, fetched_at: datetime) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "url": it.url,
        "guid": it.guid,
        "title": cap(it.title, MAX_TITLE_CHARS),
        "summary": cap(it.summary, MAX_SUMMARY_CHARS),
        "body": it.text,
        "published": it.published,
        "fetched_at": fetched_at,
        "language": it.language,
        "content_hash": it.content_hash,
    }


def _record(row: ItemRow, source_name: str) -> StoredItem:
    return StoredItem(
        id=row.id,
        source_id=row.source_id,
        source_name=source_name,
        fetched_at=row.fetched_at,
        item=Item(
            url=row.url,
            guid=row.guid,
            title=row.title,
            summary=row.summary,
            text=row.body,
            published=row.published,
            language=row.language,
            content_hash=row.content_hash,
        ),
    )


def get_items(session: Session, ids: Sequence[int]) -> list[StoredItem]:
    out: list[StoredItem] = []
    for start in range(0, len(ids), BATCH):
        stmt = (
            select(ItemRow, SourceRow.name)
            .join(SourceRow, SourceRow.id == ItemRow.source_id)
            .where(ItemRow.id.in_(list(ids[start : start + BATCH])))
            .order_by(ItemRow.id)
        )
        out.extend(_record(row, name) for row, name in session.execute(stmt))
    return out


def iter_items_since(
    session: Session, since: datetime | None, *, batch: int = BATCH
) -> Iterator[list[StoredItem]]:
    """Stream stored items (oldest first) in batches, by keyset pagination,
    so a backfill over millions of items never holds them all in memory."""
    last_id = 0
    while True:
        stmt = (
            select(ItemRow, SourceRow.name)
            .join(SourceRow, SourceRow.id == ItemRow.source_id)
            .where(ItemRow.id > last_id)
            .order_by(ItemRow.id)
            .limit(batch)
        )
        if since is not None:
            stmt = stmt.where(ItemRow.fetched_at >= since)
        chunk = [_record(row, name) for row, name in session.execute(stmt)]
        if not chunk:
            return
        yield chunk
        last_id = chunk[-1].id


def text_bytes_since(session: Session, since: datetime | None) -> int:
    """UTF-8 bytes of the title, summary and body of the items fetched since
    `since`: the text a backfill will match, to choose its automaton."""
    from sqlalchemy import LargeBinary, cast, func

    def size(column: Any) -> Any:
        if session.get_bind().dialect.name == "postgresql":
            return func.octet_length(column)
        return func.length(cast(column, LargeBinary))  # SQLite: a BLOB's length is its bytes

    total = func.coalesce(
        func.sum(size(ItemRow.title) + size(ItemRow.summary) + size(ItemRow.body)), 0
    )
    stmt = select(total)
    if since is not None:
        stmt = stmt.where(ItemRow.fetched_at >= since)
    return int(session.scalar(stmt) or 0)


def count_items(session: Session) -> int:
    from sqlalchemy import func

    return int(session.scalar(select(func.count()).select_from(ItemRow)) or 0)


def prune_items(session: Session, *, before: datetime) -> int:
    """Delete items fetched before `before` that no match refers to.

    Matched items are kept with their matches and alerts (nothing an analyst
    was told about disappears)."""
    matched = select(MatchRow.item_id)
    result = session.execute(
        delete(ItemRow).where(ItemRow.fetched_at < before, ItemRow.id.not_in(matched))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
