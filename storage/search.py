"""Reading stored items for `newswatch search` and `newswatch show`.

Search streams items newest first in batches (constant memory) with the
cheap filters (since, source, language) in SQL; the matcher confirms each
item in Python with exactly the watchlist rules. Items come either from a
keyset scan of every item (by id, the primary key: no OFFSET, no sort) or,
when the query has an index condition, from the candidates of the prefilter
index (`storage.search_index`). bench/search.py measures both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from alerts.alert_records import StoredMatch
from alerts.matching.prefilter import Condition
from crawler.crawl_records import StoredItem
from storage import StorageError
from storage.items import _record
from storage.matches import stored_match
from storage.search_index import candidate_ids
from storage.sources import normalize_name
from storage.tables import ItemRow, MatchRow, SourceRow, WatchlistRow

BATCH = 1_000


class ItemNotFound(StorageError):
    pass


@dataclass(frozen=True, slots=True)
class ItemFilter:
    since: datetime | None = None  # fetched at or after
    source: str | None = None
    language: str | None = None  # primary subtag: "en" matches "en" and "en-GB"


def iter_items_newest_first(
    session: Session, where: ItemFilter, *, batch: int = BATCH
) -> Iterator[list[StoredItem]]:
    """Stored items, newest (highest id) first, in batches of `batch`."""
    stmt = _filtered(where).limit(batch)
    last_id: int | None = None
    while True:
        page = stmt if last_id is None else stmt.where(ItemRow.id < last_id)
        chunk = [_record(row, name) for row, name in session.execute(page)]
        if not chunk:
            return
        yield chunk
        if len(chunk) < batch:
            return
        last_id = chunk[-1].id


def iter_candidate_items(
    session: Session, where: ItemFilter, condition: Condition, *, batch: int = BATCH
) -> Iterator[list[StoredItem]]:
    """The items the prefilter index names for `condition` (see
    `storage.search_index.candidate_ids`: a superset of the matches), newest
    first, in batches of at most `batch`, filtered like the scan."""
    stmt = _filtered(where)
    ids = candidate_ids(session, condition)
    while chunk := list(islice(ids, batch)):
        found = [
            _record(row, name) for row, name in session.execute(stmt.where(ItemRow.id.in_(chunk)))
        ]
        if found:
            yield found


def _filtered(where: ItemFilter) -> Select[ItemRow, str]:
    stmt = (
        select(ItemRow, SourceRow.name)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .order_by(ItemRow.id.desc())
    )
    if where.since is not None:
        stmt = stmt.where(ItemRow.fetched_at >= where.since)
    if where.source is not None:
        stmt = stmt.where(SourceRow.name == normalize_name(where.source))
    if where.language is not None:
        lang = where.language.lower()
        stmt = stmt.where((ItemRow.language == lang) | ItemRow.language.like(f"{lang}-%"))
    return stmt


def get_item(session: Session, ref: str) -> StoredItem:
    """One item by its id (as `search` prints it) or its canonical URL."""
    stmt = select(ItemRow, SourceRow.name).join(SourceRow, SourceRow.id == ItemRow.source_id)
    if ref.isascii() and ref.isdigit() and len(ref) < 19:
        stmt = stmt.where(ItemRow.id == int(ref))
    else:
        stmt = stmt.where(ItemRow.url == ref)
    found = session.execute(stmt).first()
    if found is None:
        raise ItemNotFound(f"no stored item {ref!r} (give an id from `search` or a URL)")
    return _record(found[0], found[1])


def matches_of_item(session: Session, item_id: int) -> list[StoredMatch]:
    """The stored matches of one item, oldest first (`show`)."""
    stmt = (
        select(MatchRow, WatchlistRow.name, ItemRow, SourceRow.name)
        .join(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id)
        .join(ItemRow, ItemRow.id == MatchRow.item_id)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .where(MatchRow.item_id == item_id)
        .order_by(MatchRow.id)
    )
    return [stored_match(m, item, src, wl) for m, wl, item, src in session.execute(stmt)]
