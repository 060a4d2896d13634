"""SQLite's match and outbox inserts as driver SQL store exactly what the Core statements stored.

The reference is record_matches as it was: `_INSERT_MATCH` / `_INSERT_OUTBOX`
executed through the session. Every row of matches, match_terms and outbox
(ids included) and the count returned must be the same, for new and
repeated matches, with and without alerts, `each` and `fold` watchlists,
digests, several recipients, items with and without a story.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from alerts.address_keys import recipient_key
from alerts.alert_records import Hit, Recipient, Term, Watchlist, WatchlistMatch
from alerts.digests import digest_period
from crawler.crawl_records import Item, PollOutcome
from storage import matches as matches_module
from storage.db import StorageError, session_factory, transaction
from storage.items import store_items
from storage.matches import record_matches
from storage.repository import SqlStore
from storage.watchlists import ActiveWatchlist, active_watchlists, save_watchlists
from tests.support.sources import feed_source
from tests.support.sqlitedb import migrated_sqlite
from tests.support.sqlwrites import rolled_back, writes_sent

NOW = datetime(2026, 11, 30, 23, 15, 0, 250000, tzinfo=UTC)


def reference_record_matches(
    session: Session,
    item_id: int,
    found: Sequence[tuple[ActiveWatchlist, WatchlistMatch]],
    now: datetime,
    *,
    daily_at: time = time(0, 0),
    alert: bool = True,
) -> int:
    """record_matches before the driver-SQL path (its code, unchanged)."""
    m = matches_module
    new = 0
    dialect = session.get_bind().dialect.name
    story_id = (
        session.scalar(m._STORY_OF, {"item_id": item_id})
        if any(a.watchlist.stories == "fold" for a, _ in found)
        else None
    )
    for active, match in found:
        match_id = session.scalar(
            m._INSERT_MATCH[dialect],
            {
                "item_id": item_id,
                "watchlist_id": active.id,
                "terms": list(match.terms),
                "hits": [asdict(h) for h in match.hits[:50]],
                "snippets": list(match.snippets),
                "matched_at": now,
            },
        )
        if match_id is None:
            if not alert:
                continue
            match_id = session.scalar(m._MATCH_ID, {"item_id": item_id, "watchlist_id": active.id})
            if match_id is None:
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
        if rows:
            session.execute(m._INSERT_OUTBOX[dialect], rows)
    return new


WATCHLISTS = [
    Watchlist(
        "each",
        (Term("Pantsir"),),
        notify=(Recipient("email", "A@Example.org"), Recipient("webhook", "${HOOK}", "${S}")),
    ),
    Watchlist("fold", (Term("SAM"),), notify=(Recipient("email", "b@x.org"),), stories="fold"),
    Watchlist("hourly", (Term("x"),), notify=(Recipient("email", "c@x.org"),), digest="hourly"),
    Watchlist("daily", (Term("y"),), notify=(Recipient("slack", "#c"),), digest="daily"),
    Watchlist("silent", (Term("z"),)),  # no recipient
]
ITEMS = 6


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with migrated_sqlite(tmp_path_factory.mktemp("record-matches") / "matches.db") as eng:
        _seed(eng)
        yield eng


def _seed(engine: Engine) -> None:
    """Source "a", the watchlists, items 1-6; items 2 and 4 in story 7."""
    with transaction(session_factory(engine)) as s:
        sid = feed_source(s, "a", NOW).id
        save_watchlists(s, WATCHLISTS, NOW)
        ids = store_items(
            s,
            sid,
            [Item(f"https://e.org/{n}", "g", "t", "s", "b", NOW, "en", "h") for n in range(ITEMS)],
            NOW,
        )
        s.execute(
            text(
                "INSERT INTO stories (id, first_seen, last_seen, title, item_count, created_at) "
                "VALUES (7, '2026-11-30 00:00:00.000000', '2026-11-30 00:00:00.000000', 't', 1, "
                "'2026-11-30 00:00:00.000000')"
            )
        )
        s.execute(text("UPDATE items SET story_id = 7 WHERE id IN (:a, :b)"), {"a": 2, "b": 4})
    assert sorted(ids.values()) == list(range(1, ITEMS + 1))


def _snapshot(session: Session) -> list[list[tuple[Any, ...]]]:
    return [
        [tuple(r) for r in session.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))]
        for table in ("matches", "match_terms", "outbox")
    ]


Call = tuple[int, list[tuple[int, WatchlistMatch]], datetime, bool, time]


def _run(engine: Engine, record: Any, calls: Sequence[Call]) -> tuple[list[int], Any]:
    session = sessionmaker(engine)()
    try:
        session.begin()
        actives = {a.id: a for a in active_watchlists(session)}
        counts = [
            record(
                session,
                item_id,
                [(actives[wid], match) for wid, match in found],
                now,
                alert=alert,
                daily_at=daily_at,
            )
            for item_id, found, now, alert, daily_at in calls
        ]
        return counts, _snapshot(session)
    finally:
        session.rollback()
        session.close()


TEXT = st.text(max_size=12)  # lone surrogates too: JSON escapes them
HITS = st.builds(
    Hit,
    rule=TEXT,
    spelling=TEXT,
    field=st.sampled_from(["title", "summary", "body"]),
    start=st.integers(0, 10**6),
    end=st.integers(0, 10**6),
)
MATCHES = st.builds(
    WatchlistMatch,
    watchlist=TEXT,
    terms=st.lists(TEXT, max_size=3).map(tuple),
    hits=st.one_of(st.lists(HITS, max_size=3), st.lists(HITS, min_size=49, max_size=53)).map(tuple),
    snippets=st.lists(TEXT, max_size=3).map(tuple),
)
CALLS = st.lists(
    st.tuples(
        st.integers(1, ITEMS),
        st.lists(st.tuples(st.integers(1, len(WATCHLISTS)), MATCHES), max_size=3),
        st.one_of(
            st.just(NOW),
            st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2090, 1, 1),
                timezones=st.just(UTC),
            ),
        ),
        st.booleans(),
        st.sampled_from([time(0, 0), time(8, 30)]),
    ),
    max_size=8,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CALLS)
def test_the_same_rows_as_the_core_statements(engine: Engine, calls: list[Call]) -> None:
    """Repeats of an (item, watchlist) pair with and without alerts (a
    backfill owing a first poll's alerts), up to 53 hits (50 stored)."""
    expected = _run(engine, reference_record_matches, calls)
    assert _run(engine, record_matches, calls) == expected


def test_unstorable_json_is_refused_alike(engine: Engine) -> None:
    """A value JSON cannot hold: the same StorageError from the transaction."""
    bad = WatchlistMatch("each", ("Pantsir",), (), (b"bytes",))  # type: ignore[arg-type]
    errors = []
    for record in (reference_record_matches, record_matches):
        with pytest.raises(StorageError) as caught, transaction(session_factory(engine)) as s:
            active = {a.id: a for a in active_watchlists(s)}[1]
            record(s, 1, [(active, bad)], NOW)
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]


def test_buffered_polls_are_written_before_the_matches(engine: Engine) -> None:
    with writes_sent(engine) as writes, rolled_back(SqlStore(engine)) as tx:
        active = tx.active_watchlists(["each"])[0]
        outcome = PollOutcome(1, "ok", etag='"e"', body_hash="0" * 64)
        tx.record_poll(outcome, now=NOW, next_poll_at=NOW + timedelta(hours=1), interval=900)
        tx.record_matches(1, [(active, WatchlistMatch("each", ("Pantsir",), (), ()))], NOW)
    assert writes[:3] == ["UPDATE sources", "INSERT INTO matches", "INSERT INTO outbox"]
