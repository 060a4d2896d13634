"""The search prefilter index: index terms per item, candidates per query condition.

Terms come from `alerts.matching.prefilter` (word tokens and CJK bigrams of
the matcher's own search keys). Stored per backend (migration 0011):

- SQLite: `search_fts`, a contentless FTS5 table (`detail=none`: no
  positions) fed our own terms separated by spaces; the `ascii` tokenizer
  with `_` as a token character splits exactly there (our terms hold no
  other ASCII separator, non-ASCII characters are token characters).
- PostgreSQL: `search_terms (item_id, terms tsvector)` with a GIN index,
  built by `array_to_tsvector` (no parser, no stemming: our terms as they
  are). A tsvector holds at most 1 MB of lexemes: an item with more terms
  stores only `MARK`, which every lookup includes (always a candidate).

Items not indexed yet are listed in `search_pending` (the migration lists
every existing item; `reset_index` lists them all again): lookups return
them as candidates too, so a search is correct before, during and after a
reindex. Every insert into `items` goes through `storage.items.store_items`,
which only lists the new items as pending, in the same transaction (one
multi-row insert: the crawl never pays for the terms). `index_pending`
indexes them later, off the crawl path, one batch per transaction: the
daemon's `search-index` job, `newswatch search` when few are pending, and
`search --reindex`. A batch indexes its items and drops their pending rows
in one transaction, so a crash loses nothing (the rows stay pending).

Why rows, not a watermark ("indexed up to id N"): PostgreSQL hands out ids
before commit, so an item with an id below the watermark can commit after
the indexer moved past it, and would be neither indexed nor scanned.

Deleting an item removes its PostgreSQL row (cascade) but not its FTS5
terms (a contentless table needs the old text to delete): a stale rowid is
a candidate that no item answers to, and SQLite reusing the id of a deleted
item only unites two term sets; either way a candidate too many, never one
too few. `reset_index` (`search --reindex`) drops them.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Iterator, Sequence

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from alerts.matching.prefilter import AllOf, Condition, Token, document_terms
from storage.tables import ItemRow, SearchPendingRow

MARK = "§§"  # no document term: word tokens have no "§", bigrams only CJK
PG_MAX_LEXEME_BYTES = 900_000  # tsvector limit is 1 MB; stay clear of it
PAGE = 2_000

ItemText = tuple[int, str, str, str]  # id, title, summary, body (as stored)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def index_items(session: Session, items: Iterable[ItemText]) -> None:
    """Store the index terms of these items (new, or listed in search_pending)."""
    rows = [(item_id, document_terms((t, s, b))) for item_id, t, s, b in items]
    if not rows:
        return
    if _dialect(session) == "postgresql":
        params = [
            {"id": item_id, "terms": terms if _fits(terms) else [MARK]} for item_id, terms in rows
        ]
        session.execute(
            text(
                "INSERT INTO search_terms (item_id, terms) "
                "VALUES (:id, array_to_tsvector(CAST(:terms AS text[]))) "
                "ON CONFLICT (item_id) DO UPDATE SET terms = EXCLUDED.terms"
            ),
            params,
        )
        return
    session.execute(
        text("INSERT INTO search_fts (rowid, terms) VALUES (:id, :terms)"),
        [{"id": item_id, "terms": " ".join(terms)} for item_id, terms in rows],
    )


def _fits(terms: Sequence[str]) -> bool:
    return sum(len(t.encode()) for t in terms) <= PG_MAX_LEXEME_BYTES


def fts5_query(condition: Condition) -> str:
    """The FTS5 MATCH expression of a condition (terms quoted, `*` for prefixes)."""
    if isinstance(condition, Token):
        quoted = '"' + condition.text.replace('"', '""') + '"'
        return quoted + "*" if condition.prefix else quoted
    joiner = " AND " if isinstance(condition, AllOf) else " OR "
    return "(" + joiner.join(fts5_query(c) for c in condition.operands) + ")"


def tsquery(condition: Condition) -> str:
    """The tsquery text of a condition (lexemes quoted, `:*` for prefixes)."""
    if isinstance(condition, Token):
        quoted = "'" + condition.text.replace("\\", "\\\\").replace("'", "''") + "'"
        return quoted + ":*" if condition.prefix else quoted
    joiner = " & " if isinstance(condition, AllOf) else " | "
    return "(" + joiner.join(tsquery(c) for c in condition.operands) + ")"


def _indexed_page(session: Session, condition: Condition, before: int | None) -> list[int]:
    if _dialect(session) == "postgresql":
        sql = "SELECT item_id FROM search_terms WHERE terms @@ CAST(:q AS tsquery)"
        q = f"{tsquery(condition)} | {tsquery(Token(MARK))}"
        if before is not None:
            sql += " AND item_id < :before"
        sql += " ORDER BY item_id DESC LIMIT :n"
    else:
        sql = "SELECT rowid FROM search_fts WHERE search_fts MATCH :q"
        q = fts5_query(condition)
        if before is not None:
            sql += " AND rowid < :before"
        sql += " ORDER BY rowid DESC LIMIT :n"
    params = {"q": q, "before": before, "n": PAGE}
    if _dialect(session) != "postgresql":
        return list(session.scalars(text(sql), params))
    # The planner misjudges how selective an OR of rare lexemes is and reads
    # every tsvector, by a seq scan or by walking the primary key backwards
    # (1.0 s per 50k items for `Pantsir`, vs 0.06 s for `방공` through GIN).
    # Force the GIN bitmap: each page costs one bitmap of the matches below
    # `before` plus a top-N sort, which is cheap even for common terms.
    session.execute(text("SET LOCAL enable_seqscan = off"))
    session.execute(text("SET LOCAL enable_indexscan = off"))
    try:
        return list(session.scalars(text(sql), params))
    finally:
        session.execute(text("RESET enable_seqscan"))
        session.execute(text("RESET enable_indexscan"))


def _pending_page(session: Session, before: int | None) -> list[int]:
    stmt = select(SearchPendingRow.item_id).order_by(SearchPendingRow.item_id.desc()).limit(PAGE)
    if before is not None:
        stmt = stmt.where(SearchPendingRow.item_id < before)
    return list(session.scalars(stmt))


def _paged(session: Session, page: Callable[[Session, int | None], list[int]]) -> Iterator[int]:
    before: int | None = None
    while True:
        ids = page(session, before)
        yield from ids
        if len(ids) < PAGE:
            return
        before = ids[-1]


def candidate_ids(session: Session, condition: Condition) -> Iterator[int]:
    """Ids of items that may satisfy `condition`, newest (highest id) first, once each.

    Indexed items whose terms satisfy it, merged with every pending item.
    """

    def indexed(s: Session, before: int | None) -> list[int]:
        return _indexed_page(s, condition, before)

    merged = heapq.merge(_paged(session, indexed), _paged(session, _pending_page), reverse=True)
    last: int | None = None
    for item_id in merged:
        if item_id != last:
            yield item_id
            last = item_id


def pending_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(SearchPendingRow)) or 0)


def reset_index(session: Session) -> int:
    """Empty the index and list every stored item as pending; returns how many."""
    if _dialect(session) == "postgresql":
        session.execute(text("DELETE FROM search_terms"))
    else:
        session.execute(text("INSERT INTO search_fts (search_fts) VALUES ('delete-all')"))
    session.execute(delete(SearchPendingRow))
    session.execute(
        insert(SearchPendingRow).from_select(["item_id"], select(ItemRow.id)),
    )
    return pending_count(session)


def mark_pending(session: Session, item_ids: Sequence[int]) -> None:
    """List new items as not indexed yet (the crawl path's only search cost)."""
    if not item_ids:
        return
    if _dialect(session) == "postgresql":
        session.execute(
            text(
                "INSERT INTO search_pending (item_id) SELECT unnest(CAST(:ids AS integer[])) "
                "ON CONFLICT DO NOTHING"
            ),
            {"ids": list(item_ids)},
        )
        return
    # One statement over a JSON array: 2 µs per item where an executemany of
    # one row each took 10-40 µs (`WHERE true`: SQLite's upsert-after-SELECT rule).
    # Driver SQL on the session's connection: no statement to compile or look
    # up per call (the crawl runs it once per stored feed). It does not run the
    # session's do_orm_execute hooks: storage.repository's store_items runs them.
    session.connection().exec_driver_sql(
        "INSERT INTO search_pending (item_id) SELECT value FROM json_each(?) "
        "WHERE true ON CONFLICT DO NOTHING",
        (json.dumps(list(item_ids)),),
    )


def index_pending(session: Session, batch: int = 1_000) -> int:
    """Index up to `batch` pending items (newest first); returns how many were done.

    The items' terms are stored and their pending rows deleted in the
    caller's transaction: if it does not commit, they stay pending.
    """
    if _dialect(session) == "postgresql":
        # SKIP LOCKED: two indexers (daemon replicas, a `search`) take disjoint
        # batches. KEY SHARE on the items: a prune deleting one waits for this
        # batch (or is skipped here), so the search_terms insert never waits on
        # it (no deadlock between the FK check and the cascade).
        rows = list(
            session.execute(
                text(
                    "SELECT i.id, i.title, i.summary, i.body FROM search_pending p "
                    "JOIN items i ON i.id = p.item_id ORDER BY p.item_id DESC LIMIT :n "
                    "FOR UPDATE OF p SKIP LOCKED FOR KEY SHARE OF i SKIP LOCKED"
                ),
                {"n": batch},
            )
        )
        ids = [r[0] for r in rows]
        if ids:
            session.execute(delete(SearchPendingRow).where(SearchPendingRow.item_id.in_(ids)))
    else:
        # Write first: the transaction takes SQLite's write lock at once (a
        # read first would fail to upgrade if a crawl wrote meanwhile).
        ids = list(
            session.scalars(
                text(
                    "DELETE FROM search_pending WHERE item_id IN (SELECT item_id FROM "
                    "search_pending ORDER BY item_id DESC LIMIT :n) RETURNING item_id"
                ),
                {"n": batch},
            )
        )
        rows = (
            list(
                session.execute(
                    select(ItemRow.id, ItemRow.title, ItemRow.summary, ItemRow.body).where(
                        ItemRow.id.in_(ids)
                    )
                )
            )
            if ids
            else []
        )
    index_items(session, ((r[0], r[1], r[2], r[3]) for r in rows))
    return len(ids)
