"""`match_terms` (migrations 0010 and 0012), the trends page's dated term rows
and the term filter's index, is kept by database triggers: after any mix of
writes it equals what it is derived from, `matches` joined to `items`, on
SQLite and PostgreSQL. And the trends read from it count what the join counts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, delete, insert, select, text, update

from storage.db import _alembic_config, transaction, upgrade
from storage.sources import remove_source
from storage.tables import ItemRow, MatchRow, MatchTermRow, SourceRow, WatchlistRow
from storage.views import trends
from tests.conftest import Database
from tests.support.webdata import scenario

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


Row = tuple[int, str, int, str, str | None, datetime]


def _derived(engine: Engine) -> Counter[Row]:
    """match_terms as it should be, recomputed in Python from the join."""
    want: Counter[Row] = Counter()
    with engine.connect() as conn:
        rows = conn.execute(
            select(MatchRow.id, MatchRow.terms, MatchRow.watchlist_id, MatchRow.matched_at)
            .add_columns(ItemRow.published, ItemRow.language)
            .join(ItemRow, ItemRow.id == MatchRow.item_id)
        )
        for mid, terms, wl, matched_at, published, language in rows:
            day = published.astimezone(UTC).date().isoformat()
            terms = terms if isinstance(terms, list) else []
            for term in dict.fromkeys(str(t) for t in terms if t is not None):
                want[(mid, term, wl, day, language, matched_at)] += 1
    return want


def _stored(engine: Engine) -> Counter[Row]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                MatchTermRow.match_id,
                MatchTermRow.term,
                MatchTermRow.watchlist_id,
                MatchTermRow.day,
                MatchTermRow.language,
                MatchTermRow.matched_at,
            )
        )
        return Counter(tuple(r) for r in rows)  # type: ignore[misc]


def _check(engine: Engine) -> None:
    assert _stored(engine) == _derived(engine)


def _ids(engine: Engine, column: object) -> list[int]:
    with engine.connect() as conn:
        return [int(i) for i in conn.scalars(select(column).order_by(column))]  # type: ignore[call-overload]


def test_rows_follow_every_write(db: Database) -> None:
    scenario(db.engine, NOW, history=5)
    _check(db.engine)
    assert _stored(db.engine), "the scenario's matches must give rows"
    items = _ids(db.engine, ItemRow.id)
    matches = _ids(db.engine, MatchRow.id)
    with db.engine.begin() as conn:
        # new matches of several shapes: repeated, non-text, empty terms
        taken = set(conn.scalars(select(MatchRow.item_id).where(MatchRow.watchlist_id == 2)))
        free = [i for i in items if i not in taken]
        for n, terms in enumerate([["A", "A", "B"], [], ["C", 7], ["Ünï", "é"]]):
            conn.execute(insert(MatchRow).values(
                id=matches[-1] + 1 + n, item_id=free[n], watchlist_id=2, terms=terms, hits=[],
                snippets=[], matched_at=NOW,
            ))  # fmt: skip
    _check(db.engine)
    with db.engine.begin() as conn:
        conn.execute(update(MatchRow).where(MatchRow.id == matches[0]).values(terms=["Z", "Y"]))
        conn.execute(update(MatchRow).where(MatchRow.id == matches[-1]).values(item_id=free[-1]))
        conn.execute(
            update(MatchRow)
            .where(MatchRow.id == matches[1])
            .values(matched_at=NOW - timedelta(hours=5, microseconds=7))
        )
    _check(db.engine)
    with db.engine.begin() as conn:
        conn.execute(
            update(ItemRow)
            .where(ItemRow.id == items[0])
            .values(published=NOW - timedelta(days=40), language="xx")
        )
        conn.execute(update(ItemRow).where(ItemRow.id == items[1]).values(language=None))
        conn.execute(update(ItemRow).where(ItemRow.id == items[2]).values(title="renamed"))
    _check(db.engine)
    with db.engine.begin() as conn:
        conn.execute(delete(MatchRow).where(MatchRow.id == matches[2]))
    _check(db.engine)
    # cascades: a source takes its items and their matches; so does a watchlist
    with transaction(db.factory) as s:
        source = s.scalar(
            select(SourceRow.name)
            .join(ItemRow, ItemRow.source_id == SourceRow.id)
            .join(MatchRow, MatchRow.item_id == ItemRow.id)
            .limit(1)
        )
        assert source is not None
        remove_source(s, source)
    _check(db.engine)
    with db.engine.begin() as conn:
        conn.execute(delete(WatchlistRow).where(WatchlistRow.id == 2))
    _check(db.engine)


def _trends_by_join(
    engine: Engine, days: int, watchlist: int | None
) -> Counter[tuple[str, str, str]]:
    start = (NOW - timedelta(days=days - 1)).date()
    out: Counter[tuple[str, str, str]] = Counter()
    with engine.connect() as conn:
        rows = conn.execute(
            select(MatchRow.terms, MatchRow.watchlist_id, ItemRow.published, ItemRow.language).join(
                ItemRow, ItemRow.id == MatchRow.item_id
            )
        )
        for terms, wl, published, language in rows:
            day = published.astimezone(UTC).date()
            if start <= day <= NOW.date() and watchlist in (None, wl):
                for term in dict.fromkeys(terms):
                    out[(term, language or "?", day.isoformat())] += 1
    return out


@pytest.mark.parametrize("days", [30, 90])
@pytest.mark.parametrize("watchlist", [None, "air-defence", "brics", "none-such"])
def test_trends_count_what_the_join_counts(db: Database, days: int, watchlist: str | None) -> None:
    scenario(db.engine, NOW, history=28)
    with db.engine.connect() as conn:
        ids = dict(conn.execute(select(WatchlistRow.name, WatchlistRow.id)).all())
    with transaction(db.factory) as s:
        series = trends(s, now=NOW, days=days, watchlist=watchlist)
    got: Counter[tuple[str, str, str]] = Counter()
    for one in series:
        for language, counts in one.by_language.items():
            for day, n in zip(one.days, counts, strict=True):
                if n:
                    got[(one.term, language, day.date().isoformat())] += n
    want = _trends_by_join(db.engine, days, ids.get(watchlist, -1) if watchlist else None)
    assert got == want
    if watchlist != "none-such":
        assert got, "the scenario's history must show in the trends"


def test_migration_fills_the_table_from_existing_matches(fresh_engine: Engine) -> None:
    """Upgrading a database that already holds matches (0009 -> 0010, then
    0011 -> 0012, which rebuilds the table with `matched_at`) fills the table
    from them, as the triggers would have; and the triggers of 0012 keep it
    after the upgrade.

    On a database of its own: stamped back to old revisions, the worker's
    shared one made the next test's `init` re-run later migrations over
    their own indexes ("index ix_sources_due already exists")."""
    engine = fresh_engine
    upgrade(engine)
    scenario(engine, NOW, history=3)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TABLE match_terms"))
            conn.execute(text("DROP FUNCTION match_terms_of_match() CASCADE"))
            conn.execute(text("DROP FUNCTION match_terms_of_item() CASCADE"))
        else:
            conn.execute(text("DROP TABLE match_terms"))
            for name in ("tr_match_terms_insert", "tr_match_terms_update", "tr_match_terms_item"):
                conn.execute(text(f"DROP TRIGGER {name}"))
    command.stamp(_alembic_config(engine), "0009")
    command.upgrade(_alembic_config(engine), "0010")  # over a database holding matches
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM match_terms")), "0010 fills the table"
    with engine.begin() as conn:  # as 0011 left it
        conn.execute(text("DROP INDEX ix_matches_watchlist"))
        conn.execute(text("DROP INDEX ix_outbox_status_created"))
    command.stamp(_alembic_config(engine), "0011")
    command.upgrade(_alembic_config(engine), "0012")  # rebuilt, with matched_at
    _check(engine)
    assert _stored(engine)
    with engine.begin() as conn:  # the new triggers are in place
        conn.execute(update(MatchRow).values(matched_at=NOW - timedelta(minutes=3)))
        conn.execute(update(ItemRow).values(language="xx"))
    _check(engine)
