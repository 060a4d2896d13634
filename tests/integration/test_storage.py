"""Repository round trips and constraints on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Insert, event, func, select
from sqlalchemy.exc import IntegrityError

from alerts.alert_records import Hit, Query, Recipient, Term, Watchlist, WatchlistMatch
from alerts.digests import digest_period
from crawler.crawl_records import Item, PollOutcome
from storage import sources as src_repo
from storage.items import get_items, iter_items_since, prune_items, store_items
from storage.matches import list_matches, record_matches
from storage.tables import MatchRow, OutboxRow
from storage.watchlists import active_watchlists, get_watchlist, remove_watchlist, save_watchlists
from tests.conftest import Database

NOW = datetime(2026, 11, 22, 2, 10, tzinfo=UTC)


def item(n: int, **kw: object) -> Item:
    base = dict(
        url=f"https://example.org/a/{n}",
        guid=f"g{n}",
        title=f"Title {n} 판치르",
        summary="s",
        text="body Панцирь",
        published=NOW - timedelta(hours=n),
        language="en",
        content_hash=f"{n:064x}",
    )
    base.update(kw)
    return Item(**base)  # type: ignore[arg-type]


def add_source(s: object, name: str = "isw") -> int:
    return src_repo.add_source(
        s,
        name=name,
        url=f"https://{name}.org/feed",
        kind="feed",  # type: ignore[arg-type]
        every_seconds=900,
        links_css=None,
        now=NOW,
    ).id


WL = Watchlist(
    name="air-defence",
    rules=(Term("Pantsir", ("Панцирь",)), Term("SAM", case_sensitive=True), Query("A AND B")),
    exclude=("BRICS Games",),
    languages=("en", "ru"),
    notify=(Recipient("email", "a@example.org"), Recipient("webhook", "${HOOK}", "${SECRET}")),
    examples_match=("Pantsir",),
)


def test_items_are_stored_once_by_canonical_url(db: Database) -> None:
    with db.session() as s, s.begin():
        sid = add_source(s)
        other = add_source(s, "rand")
        first = store_items(s, sid, [item(1), item(2), item(2)], NOW)
        again = store_items(s, other, [item(2), item(3)], NOW)
    assert sorted(first) == ["https://example.org/a/1", "https://example.org/a/2"]
    assert list(again) == ["https://example.org/a/3"]
    with db.session() as s:
        stored = get_items(s, list(first.values()) + list(again.values()))
    assert [x.item.title for x in stored] == ["Title 1 판치르", "Title 2 판치르", "Title 3 판치르"]
    assert stored[0].item.text == "body Панцирь" and stored[0].source_name == "isw"


def test_datetimes_come_back_utc_aware(db: Database) -> None:
    kst = timezone(timedelta(hours=9))
    with db.session() as s, s.begin():
        sid = add_source(s)
        ids = store_items(s, sid, [item(1, published=datetime(2026, 1, 1, 9, tzinfo=kst))], NOW)
    with db.session() as s:
        got = get_items(s, list(ids.values()))[0]
    assert got.item.published == datetime(2026, 1, 1, 0, tzinfo=UTC)
    assert got.item.published.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(db: Database) -> None:
    with db.session() as s, s.begin(), pytest.raises(Exception, match="naive datetime"):
        store_items(s, add_source(s), [item(1, published=datetime(2026, 1, 1))], NOW)


def test_watchlist_round_trip_and_soft_removal(db: Database) -> None:
    with db.session() as s, s.begin():
        save_watchlists(s, [WL], NOW)
    with db.session() as s:
        assert get_watchlist(s, "air-defence").watchlist == WL
    with db.session() as s, s.begin():
        remove_watchlist(s, "air-defence", NOW)
    with db.session() as s:
        assert active_watchlists(s) == []
    with db.session() as s, s.begin():
        save_watchlists(s, [WL], NOW)
    with db.session() as s:
        assert [a.watchlist for a in active_watchlists(s)] == [WL]


def _match() -> WatchlistMatch:
    return WatchlistMatch(
        "air-defence",
        ("Pantsir",),
        (Hit("Pantsir", "Pantsir", "title", 0, 7),),
        ("Pantsir spotted",),
    )


def test_record_matches_twice_creates_nothing_twice(db: Database) -> None:
    with db.session() as s, s.begin():
        save_watchlists(s, [WL], NOW)
        ids = store_items(s, add_source(s), [item(1)], NOW)
    item_id = next(iter(ids.values()))
    for _ in range(3):
        with db.session() as s, s.begin():
            active = get_watchlist(s, "air-defence")
            record_matches(s, item_id, [(active, _match())], NOW)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(MatchRow)) == 1
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 2
        found = list(list_matches(s, watchlist="air-defence"))
    assert [(m.terms, m.snippets, m.source_name) for m in found] == [
        (("Pantsir",), ("Pantsir spotted",), "isw")
    ]


def test_the_crawl_writes_with_prebuilt_core_statements(db: Database) -> None:
    """Items, matches and outbox rows are written by Core statements built
    once (no ORM bulk-insert layer, no statement built per call): the ORM
    path cost more CPU than the database on a crawl's inserts. On SQLite the
    items go as driver SQL, one multi-row INSERT per batch (storage.items
    `_store_sqlite`: no statement compiled or parameters processed by it)."""
    seen: list[tuple[bool, object]] = []
    sent: list[str] = []

    def record(*args: object) -> None:
        sent.append(str(args[2]))  # (conn, cursor, statement, ...)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.session() as s, s.begin():
            save_watchlists(s, [WL], NOW)
            sid = add_source(s)
            event.listen(
                s, "do_orm_execute", lambda st: seen.append((st.is_orm_statement, st.statement))
            )
            ids = store_items(s, sid, [item(1), item(2)], NOW)
            ids |= store_items(s, sid, [item(3)], NOW)
            active = get_watchlist(s, "air-defence")
            for item_id in ids.values():
                record_matches(s, item_id, [(active, _match())], NOW)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    inserts = [(orm, stmt) for orm, stmt in seen if isinstance(stmt, Insert)]
    item_batches = [sql for sql in sent if sql.startswith("INSERT INTO items ")]
    assert len(item_batches) == 2
    assert not any(orm for orm, _ in inserts)
    if db.backend == "sqlite":  # matches and outbox rows as driver SQL too (storage.matches)
        assert inserts == []
        assert [sql.count("(?, ?, ?") for sql in item_batches] == [2, 1]
        assert sum(sql.startswith("INSERT INTO matches ") for sql in sent) == 3
        assert sum(sql.startswith("INSERT INTO outbox ") for sql in sent) == 3
    else:
        assert len(inserts) == 2 + 3 * 2  # 2 item batches; a match and its outbox rows per item
        assert len({id(stmt) for _, stmt in inserts}) == 3  # items, matches, outbox


def test_outbox_unique_constraint_holds_at_the_database(db: Database) -> None:
    with db.session() as s, s.begin():
        save_watchlists(s, [WL], NOW)
        ids = store_items(s, add_source(s), [item(1)], NOW)
        record_matches(s, next(iter(ids.values())), [(get_watchlist(s, WL.name), _match())], NOW)
    with db.session() as s:
        row = s.scalars(select(OutboxRow)).first()
        assert row is not None
        s.add(
            OutboxRow(
                match_id=row.match_id,
                item_id=row.item_id,
                watchlist_id=row.watchlist_id,
                recipient_id=row.recipient_id,
                next_attempt_at=NOW,
                created_at=NOW,
            )
        )
        with pytest.raises(IntegrityError):
            s.flush()


def test_digest_rows_wait_for_their_period(db: Database) -> None:
    hourly = Watchlist("h", (Term("x"),), notify=(Recipient("email", "a@b.org"),), digest="hourly")
    with db.session() as s, s.begin():
        save_watchlists(s, [hourly], NOW)
        ids = store_items(s, add_source(s), [item(1)], NOW)
        record_matches(
            s,
            next(iter(ids.values())),
            [(get_watchlist(s, "h"), WatchlistMatch("h", ("x",), (), ()))],
            NOW,
        )
    with db.session() as s:
        row = s.scalars(select(OutboxRow)).one()
    assert (row.digest_period, row.next_attempt_at) == (
        "2026-11-22T02",
        NOW.replace(hour=3, minute=0),
    )
    assert digest_period("daily", NOW) == ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC))


def test_daily_digest_is_due_at_the_configured_time() -> None:
    from datetime import time

    eight = time(8, 0)
    before = datetime(2026, 11, 22, 7, 59, tzinfo=UTC)
    after = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    assert digest_period("daily", before, eight) == (
        "2026-11-22",
        datetime(2026, 11, 22, 8, 0, tzinfo=UTC),
    )
    assert digest_period("daily", after, eight) == (
        "2026-11-23",
        datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    )


def test_claimed_sources_are_not_claimed_again_until_the_lease_expires(db: Database) -> None:
    with db.session() as s, s.begin():
        for n in ("a", "b", "c"):
            add_source(s, n)
    lease = timedelta(minutes=5)
    with db.session() as s, s.begin():
        first = src_repo.claim_due_sources(s, now=NOW, owner="one", lease=lease, limit=2)
    with db.session() as s, s.begin():
        second = src_repo.claim_due_sources(s, now=NOW, owner="two", lease=lease, limit=10)
    assert len(first) == 2 and len(second) == 1
    assert {x.name for x in first} | {x.name for x in second} == {"a", "b", "c"}
    with db.session() as s, s.begin():
        later = src_repo.claim_due_sources(
            s, now=NOW + lease * 2, owner="three", lease=lease, limit=10
        )
    assert len(later) == 3


def test_poll_state_failures_count_and_reset(db: Database) -> None:
    with db.session() as s, s.begin():
        sid = add_source(s)
    failed = PollOutcome(sid, "failed", error="timeout after 30s")
    for _ in range(2):
        with db.session() as s, s.begin():
            src_repo.record_poll(s, failed, now=NOW, next_poll_at=NOW)
    with db.session() as s:
        got = src_repo.get_source(s, "isw")
    assert (got.consecutive_failures, got.last_error, got.last_success_at) == (
        2,
        "timeout after 30s",
        None,
    )
    with db.session() as s, s.begin():
        src_repo.record_poll(
            s, PollOutcome(sid, "ok", etag='"v2"', body_hash="h"), now=NOW, next_poll_at=NOW
        )
    with db.session() as s:
        got = src_repo.get_source(s, "isw")
    assert (got.consecutive_failures, got.last_error, got.etag, got.last_success_at) == (
        0,
        None,
        '"v2"',
        NOW,
    )


def test_streaming_and_pruning_keep_matched_items(db: Database) -> None:
    with db.session() as s, s.begin():
        save_watchlists(s, [WL], NOW)
        ids = store_items(
            s, add_source(s), [item(n) for n in range(1, 8)], NOW - timedelta(days=100)
        )
        record_matches(
            s, ids["https://example.org/a/3"], [(get_watchlist(s, WL.name), _match())], NOW
        )
    with db.session() as s:
        batches = list(iter_items_since(s, None, batch=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    with db.session() as s, s.begin():
        assert prune_items(s, before=NOW - timedelta(days=90)) == 6
    with db.session() as s:
        assert [x.item.url for b in iter_items_since(s, None) for x in b] == [
            "https://example.org/a/3"
        ]
