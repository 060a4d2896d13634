"""storage.protocol.Store: one set of scenarios, run against the in-memory fake
(storage.memory.MemoryStore) and the real adapter (storage.repository.SqlStore)
on SQLite and PostgreSQL. If the fake drifts from the database, a scenario
fails on one of them: that is what lets fast use-case tests run on the fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.alert_records import Hit, Query, Recipient, Term, Watchlist, WatchlistMatch
from crawler.crawl_records import Item, PollOutcome
from storage import StorageError
from storage.memory import MemoryStore
from storage.protocol import Store
from storage.repository import SqlStore
from storage.sources import SourceExists, add_source
from storage.stories import assign_story
from storage.watchlists import WatchlistNotFound
from tests.conftest import BACKENDS, Database, _empty

T0 = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def _sql_store(request: pytest.FixtureRequest, backend: str) -> SqlStore:
    databases: dict[str, Database] = request.getfixturevalue("_databases")
    database = databases[backend]
    _empty(database)
    return SqlStore(database.engine, database.factory)


@pytest.fixture(params=BACKENDS)
def sql_store(request: pytest.FixtureRequest) -> SqlStore:
    """Only the databases: for what the in-memory fake does not model (column constraints)."""
    return _sql_store(request, request.param)


def item(n: int, title: str = "") -> Item:
    return Item(
        url=f"https://news.example/a/{n}",
        guid=f"g{n}",
        title=title or f"Title {n}",
        summary="",
        text=f"body {n}",
        published=T0,
        language="en",
        content_hash=f"h{n}",
    )


def match(name: str, spelling: str = "Acme") -> WatchlistMatch:
    hit = Hit(rule="Acme", spelling=spelling, field="title", start=0, end=len(spelling))
    return WatchlistMatch(name, ("Acme",), (hit,), ("… Acme …",))


def watchlist(name: str, *targets: str, digest: str = "none") -> Watchlist:
    notify = tuple(Recipient("webhook", t) for t in targets)
    return Watchlist(
        name=name,
        rules=(Term("Acme", ("ACME Corp",)), Query('"supply chain" AND Acme')),
        notify=notify,
        digest=digest,  # type: ignore[arg-type]
        languages=("en",),
    )


def setup_items(store: Store, n: int, *, at: datetime = T0) -> dict[str, int]:
    with store.transaction() as tx:
        src = tx.add_source(
            name="wire",
            url="https://news.example/feed",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=at,
        )
        return tx.store_items(src.id, [item(i) for i in range(n)], at)


def test_items_are_new_once_by_url(store: Store) -> None:
    first = setup_items(store, 3)
    assert sorted(first) == [f"https://news.example/a/{i}" for i in range(3)]
    with store.transaction() as tx:
        again = tx.store_items(1, [item(2), item(3), item(3, "dup in batch")], T0)
    assert list(again) == ["https://news.example/a/3"]
    batches = list(store.items_since(None, batch=3))
    assert [len(b) for b in batches] == [3, 1]
    stored = [s for b in batches for s in b]
    assert [s.item.url for s in stored] == [f"https://news.example/a/{i}" for i in range(4)]
    assert stored[3].item.title == "dup in batch"  # the last of a batch's duplicates wins
    assert {s.source_name for s in stored} == {"wire"}
    assert list(store.items_since(T0 + timedelta(seconds=1))) == []


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    setup_items(store, 1)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.store_items(1, [item(7)], T0)
        tx.save_watchlists([watchlist("w", "https://hook.example/1")], T0)
        raise RuntimeError("crash between the writes")
    assert [s.item.url for b in store.items_since(None) for s in b] == ["https://news.example/a/0"]
    with store.transaction() as tx:
        assert tx.active_watchlists() == []
        # New again (ids are not compared: a PostgreSQL sequence does not roll back).
        assert list(tx.store_items(1, [item(7)], T0)) == ["https://news.example/a/7"]


def test_source_leases_and_fetch_state(store: Store) -> None:
    with store.transaction() as tx:
        a = tx.add_source(
            name="a",
            url="https://a.example/f",
            kind=None,
            every_seconds=600,
            links_css=None,
            now=T0,
        )
        b = tx.add_source(
            name="b",
            url="https://b.example/f",
            kind="page",
            every_seconds=600,
            links_css="h2 a",
            now=T0 + timedelta(seconds=1),
        )
        with pytest.raises(SourceExists):
            tx.add_source(
                name="a",
                url="https://x.example",
                kind=None,
                every_seconds=1,
                links_css=None,
                now=T0,
            )
    with store.transaction() as tx:
        assert tx.source_names() == {"a", "b"}
        assert tx.claim_due_sources(now=T0, owner="p1", lease=LEASE, limit=5) == [a]  # b not due
        got = tx.claim_due_sources(now=T0, owner="p2", lease=LEASE, limit=5, due_only=False)
        assert [s.name for s in got] == ["b"]  # a is leased to p1
    with store.transaction() as tx:
        tx.release_lease(a.id, "p2")  # not the holder: nothing changes
        assert (
            tx.claim_due_sources(
                now=T0 + LEASE / 2, owner="p3", lease=LEASE, limit=5, due_only=False
            )
            == []
        )
        ok = PollOutcome(
            a.id, "ok", etag='"e1"', last_modified="lm", body_hash="bh", detected_kind="feed"
        )
        tx.record_poll(ok, now=T0, next_poll_at=T0 + timedelta(minutes=5), interval=300)
        failed = PollOutcome(a.id, "failed", error="HTTP 503")
        tx.record_poll(failed, now=T0, next_poll_at=T0 + timedelta(minutes=9), interval=600)
        tx.release_lease(b.id, "p2")
    later = T0 + timedelta(minutes=9)
    with store.transaction() as tx:
        got = tx.claim_due_sources(now=later, owner="p4", lease=LEASE, limit=1, names=["a", "zz"])
    assert len(got) == 1
    polled = got[0]
    assert (polled.kind, polled.etag, polled.last_modified, polled.body_hash) == (
        "feed",
        '"e1"',
        "lm",
        "bh",  # a failure keeps the validators
    )
    assert (polled.last_error, polled.consecutive_failures) == ("HTTP 503", 1)
    assert (polled.current_interval_seconds, polled.last_success_at) == (600, T0)
    assert polled.next_poll_at == later


def test_seen_links_and_prune(store: Store) -> None:
    ids = setup_items(store, 3, at=T0 - timedelta(days=100))
    wl = watchlist("w", "https://hook.example/1")
    with store.transaction() as tx:
        tx.add_seen_links(1, ["https://a/1", "https://a/2", "https://a/1"], T0)
        tx.add_seen_links(1, ["https://a/2", "https://a/3"], T0)
        tx.save_watchlists([wl], T0)
        active = tx.get_watchlist("w")
        tx.record_matches(ids["https://news.example/a/1"], [(active, match("w"))], T0)
    with store.transaction() as tx:
        assert tx.seen_links(1) == {"https://a/1", "https://a/2", "https://a/3"}
        assert tx.seen_links(2) == frozenset()
        assert tx.prune_items(before=T0) == 2  # the matched one stays
    assert [s.id for b in store.items_since(None) for s in b] == [ids["https://news.example/a/1"]]


def test_seen_versions_take_the_newest_lastmod(store: Store) -> None:
    """A sitemap's url → lastmod memory: per source, the last version written
    wins (also within one call), undated URLs are remembered as None."""
    setup_items(store, 1, at=T0)
    d1, d2 = T0 - timedelta(days=2), T0 - timedelta(days=1)
    with store.transaction() as tx:
        spider = tx.add_source(
            name="s",
            url="spider:s",
            kind="spider",
            every_seconds=900,
            links_css=None,
            now=T0,
            spider="pkg.mod:Spider",
        )
        assert (spider.id, spider.spider) == (2, "pkg.mod:Spider")
        tx.add_source(  # fed from outside (newswatch.scrapy): never claimed
            name="outside",
            url="spider:outside",
            kind="spider",
            every_seconds=900,
            links_css=None,
            now=T0,
        )
        tx.add_seen_versions(1, [("https://a/1", d1), ("https://a/2", None)], T0)
        tx.add_seen_versions(2, [("https://a/1", d2)], T0)
    with store.transaction() as tx:
        assert tx.seen_versions(1) == {"https://a/1": d1, "https://a/2": None}
        tx.add_seen_versions(1, [("https://a/1", d1), ("https://a/1", d2), ("https://a/3", d1)], T0)
    with store.transaction() as tx:
        assert tx.seen_versions(1) == {"https://a/1": d2, "https://a/2": None, "https://a/3": d1}
        assert tx.seen_versions(2) == {"https://a/1": d2}
        assert tx.seen_versions(3) == {}
        assert "https://a/3" in tx.seen_links(1)
        assert [
            x.spider
            for x in tx.claim_due_sources(
                now=T0, owner="o", lease=timedelta(minutes=5), limit=9, names=None, due_only=False
            )
        ] == [None, "pkg.mod:Spider"]


def test_a_lease_is_renewed_only_by_its_holder(store: Store) -> None:
    """renew_lease: the holder moves its lease's end (even once lapsed, while
    nobody else claimed the source); anyone else changes nothing."""
    with store.transaction() as tx:
        a = tx.add_source(
            name="a",
            url="spider:a",
            kind="spider",
            every_seconds=600,
            links_css=None,
            now=T0,
            spider="pkg.mod:S",
        )
        assert not tx.renew_lease(a.id, "p1", until=T0 + LEASE)  # nobody holds it
        assert [s.id for s in tx.claim_due_sources(now=T0, owner="p1", lease=LEASE, limit=5)] == [
            a.id
        ]
    later = T0 + 3 * LEASE  # p1's lease has lapsed; nobody claimed the source since
    with store.transaction() as tx:
        assert not tx.renew_lease(a.id, "p2", until=later + LEASE)
        assert tx.renew_lease(a.id, "p1", until=later + LEASE)
    with store.transaction() as tx:  # renewed: p2 cannot claim it now
        assert tx.claim_due_sources(now=later, owner="p2", lease=LEASE, limit=5) == []
    much_later = later + 2 * LEASE
    with store.transaction() as tx:  # lapsed again, and p2 claims it: p1 cannot renew
        assert [
            s.id for s in tx.claim_due_sources(now=much_later, owner="p2", lease=LEASE, limit=5)
        ] == [a.id]
        assert not tx.renew_lease(a.id, "p1", until=much_later + LEASE)
    with store.transaction() as tx:
        assert tx.claim_due_sources(now=much_later, owner="p1", lease=LEASE, limit=5) == []


def test_old_sitemap_versions_are_pruned_undated_and_page_links_stay(store: Store) -> None:
    old, edge, fresh = T0 - timedelta(days=30), T0 - timedelta(days=14), T0 - timedelta(days=1)
    with store.transaction() as tx:
        for name, kind in (("p", "page"), ("s", "sitemap"), ("t", "sitemap")):
            tx.add_source(
                name=name,
                url=f"https://{name}/",
                kind=kind,
                every_seconds=900,
                links_css=None,
                now=T0,
            )
        tx.add_seen_links(1, ["https://p/1"], T0 - timedelta(days=400))
        tx.add_seen_versions(
            2,
            [
                ("https://s/old", old),
                ("https://s/edge", edge),
                ("https://s/new", fresh),
                ("https://s/undated", None),
            ],
            T0 - timedelta(days=400),
        )
        tx.add_seen_versions(3, [("https://t/old", old - timedelta(days=1))], T0)
    with store.transaction() as tx:
        assert tx.prune_seen_versions(before=edge) == 2
    with store.transaction() as tx:
        assert tx.seen_links(1) == {"https://p/1"}
        assert tx.seen_versions(2) == {
            "https://s/edge": edge,
            "https://s/new": fresh,
            "https://s/undated": None,
        }
        assert tx.seen_versions(3) == {}
        assert tx.prune_seen_versions(before=edge) == 0


def test_watchlists_keep_their_ids_and_recipients(store: Store) -> None:
    with store.transaction() as tx:
        tx.save_watchlists(
            [watchlist("w", "https://hook/1", "https://hook/2"), watchlist("a", "https://hook/3")],
            T0,
        )
        v1 = tx.watchlists_version()
        first = tx.get_watchlist("w")
    assert [r.target for _, r in first.recipient_ids] == ["https://hook/1", "https://hook/2"]
    assert first.watchlist.rules == (Term("Acme", ("ACME Corp",)), Query('"supply chain" AND Acme'))
    assert first.watchlist.notify == tuple(r for _, r in first.recipient_ids)
    later = T0 + timedelta(minutes=1)
    with store.transaction() as tx:
        assert [a.watchlist.name for a in tx.active_watchlists()] == ["a", "w"]
        tx.save_watchlists([watchlist("w", "https://hook/2", "https://hook/4")], later)
        again = tx.get_watchlist("w")
        assert tx.watchlists_version() != v1
    assert again.id == first.id
    kept = dict((r.target, rid) for rid, r in again.recipient_ids)
    assert (
        kept["https://hook/2"]
        == dict((r.target, rid) for rid, r in first.recipient_ids)["https://hook/2"]
    )
    assert list(kept) == ["https://hook/2", "https://hook/4"]
    with store.transaction() as tx:
        tx.remove_watchlist("w", later)
        with pytest.raises(WatchlistNotFound):
            tx.get_watchlist("w")
        with pytest.raises(StorageError):
            tx.remove_watchlist("w", later)
        assert [a.watchlist.name for a in tx.active_watchlists(["w", "a"])] == ["a"]
        tx.save_watchlists([watchlist("w", "https://hook/2")], later)  # revived
        assert tx.get_watchlist("w").id == first.id


def test_matches_and_their_alerts_are_written_once(store: Store) -> None:
    ids = setup_items(store, 2)
    with store.transaction() as tx:
        tx.save_watchlists([watchlist("w", "https://hook/1", "https://hook/2")], T0)
        active = tx.get_watchlist("w")
        item_ids = sorted(ids.values())
        assert tx.record_matches(item_ids[0], [(active, match("w"))], T0) == 1
        assert tx.record_matches(item_ids[0], [(active, match("w"))], T0) == 0
        assert tx.count_matches(active.id, item_ids) == 1
        assert tx.count_alerts(active.id) == 2
        assert tx.count_matches(active.id, []) == 0
        counts = tx.backlog(now=T0)
    assert (counts.pending, counts.due, counts.sent, counts.failed) == (2, 2, 0, 0)


def _three_alerts_to_one_recipient(store: Store) -> list[int]:
    ids = sorted(setup_items(store, 3).values())
    with store.transaction() as tx:
        tx.save_watchlists([watchlist("w", "https://hook/1")], T0)
        active = tx.get_watchlist("w")
        for n, item_id in enumerate(ids):
            tx.record_matches(item_id, [(active, match("w"))], T0 + timedelta(seconds=n))
    return ids


def test_alerts_are_claimed_in_order_and_never_overtake(store: Store) -> None:
    _three_alerts_to_one_recipient(store)
    now = T0 + timedelta(minutes=1)
    with store.transaction() as tx:
        first = tx.claim_due_alerts(now=now, owner="d1", lease=LEASE, limit=1)
        assert tx.claim_due_alerts(now=now, owner="d2", lease=LEASE, limit=10) == []  # waits
    assert len(first) == 1 and first[0].digest_period is None
    batch = first[0]
    assert batch.watchlist == "w" and batch.recipient.target == "https://hook/1"
    assert batch.alerts[0].match.item_url == "https://news.example/a/0"
    assert batch.alerts[0].match.source_name == "wire"
    assert batch.alerts[0].highlights == ("Acme",)
    retry_at = now + timedelta(minutes=5)
    with store.transaction() as tx:
        assert tx.schedule_retry(batch.ids, owner="d2", error="x", next_attempt_at=retry_at) == 0
        assert (
            tx.schedule_retry(batch.ids, owner="d1", error="HTTP 503", next_attempt_at=retry_at)
            == 1
        )
        assert tx.claim_due_alerts(now=now, owner="d3", lease=LEASE, limit=10) == []
    with store.transaction() as tx:
        got = tx.claim_due_alerts(now=retry_at, owner="d4", lease=LEASE, limit=10)
        assert [b.alerts[0].match.item_url[-1] for b in got] == ["0", "1", "2"]
        assert got[0].attempts == 1
        assert tx.mark_sent(got[0].ids, owner="d4", now=retry_at) == 1
        assert tx.mark_failed(got[1].ids, owner="d4", error="HTTP 404") == 1
        assert tx.release_alerts(got[2].ids, owner="d4") == 1
        assert tx.release_alerts(got[2].ids, owner="d4") == 0
        counts = tx.backlog(now=retry_at)
    assert (counts.pending, counts.due, counts.sent, counts.failed) == (1, 1, 1, 1)


def test_a_digest_is_claimed_whole_when_due(store: Store) -> None:
    ids = sorted(setup_items(store, 2).values())
    with store.transaction() as tx:
        tx.save_watchlists([watchlist("h", "https://hook/1", digest="hourly")], T0)
        active = tx.get_watchlist("h")
        for item_id in ids:
            tx.record_matches(item_id, [(active, match("h"))], T0, daily_at=time(8, 0))
    with store.transaction() as tx:
        assert (
            tx.claim_due_alerts(now=T0 + timedelta(minutes=30), owner="d", lease=LEASE, limit=10)
            == []
        )
        due = T0.replace(minute=0) + timedelta(hours=1)
        got = tx.claim_due_alerts(now=due, owner="d", lease=LEASE, limit=10)
    assert len(got) == 1
    assert got[0].digest_period == "2026-11-30T09"
    assert len(got[0].alerts) == 2
    with store.transaction() as tx:
        assert tx.claim_due_alerts(now=due, owner="e", lease=LEASE, limit=10) == []
        assert tx.release_alerts(got[0].ids[:1], owner="d") == 1  # half the digest free again
        assert tx.claim_due_alerts(now=due, owner="e", lease=LEASE, limit=10) == []  # whole or none
        assert tx.mark_sent(got[0].ids, owner="d", now=due) == 1


def test_waiting_recipients_are_noted_and_skipped(store: Store) -> None:
    ids = sorted(setup_items(store, 1).values())
    with store.transaction() as tx:
        tx.save_watchlists([watchlist("w", "${HOOK_A}", "https://hook/2")], T0)
        active = tx.get_watchlist("w")
        tx.record_matches(ids[0], [(active, match("w"))], T0)
        refs = tx.pending_recipients()
        assert sorted(r.target for r in refs) == ["${HOOK_A}", "https://hook/2"]
        blocked = [r.id for r in refs if r.target.startswith("$")]
        assert tx.note_waiting(blocked, "HOOK_A is not set") == 1
        assert tx.note_waiting([], "nothing") == 0
        got = tx.claim_due_alerts(
            now=T0, owner="d", lease=LEASE, limit=10, exclude_recipients=blocked
        )
    assert [b.recipient.target for b in got] == ["https://hook/2"]


def test_removed_recipients_and_watchlists_cancel_what_they_were_owed(store: Store) -> None:
    """storage.cancellations, on the fake and both databases: a re-import
    without a recipient and a watchlist removal cancel their undelivered rows
    (pending, in retry, failed) and leave sent rows and other recipients."""
    ids = sorted(setup_items(store, 3).values())
    with store.transaction() as tx:
        tx.save_watchlists(
            [watchlist("w", "https://hook/1", "https://hook/2"), watchlist("a", "https://hook/2")],
            T0,
        )
        w, a = tx.get_watchlist("w"), tx.get_watchlist("a")
        tx.record_matches(ids[0], [(w, match("w")), (a, match("a"))], T0)
        got = tx.claim_due_alerts(now=T0, owner="d", lease=LEASE, limit=10)
        assert len(got) == 2  # hook/1; hook/2 for both watchlists in one message
        by_target = {b.recipient.target: b for b in got}
        tx.mark_sent(by_target["https://hook/1"].ids, owner="d", now=T0)
        retry = T0 + timedelta(minutes=5)
        tx.schedule_retry(
            by_target["https://hook/2"].ids, owner="d", error="HTTP 503", next_attempt_at=retry
        )
        tx.record_matches(ids[1], [(w, match("w")), (a, match("a"))], T0)
        tx.record_matches(ids[2], [(w, match("w"))], T0)
        later = T0 + timedelta(minutes=1)
        got = tx.claim_due_alerts(now=later, owner="e", lease=LEASE, limit=10)
        assert [b.recipient.target for b in got] == ["https://hook/1"] * 2
        tx.mark_failed(got[0].ids, owner="e", error="HTTP 404")
        # hook/1 leaves w: its failed row and the one still leased to "e" go;
        # its sent row stays. hook/2 stays on w: untouched.
        assert tx.save_watchlists([watchlist("w", "https://hook/2")], later) == 2
        assert tx.mark_sent(got[1].ids, owner="e", now=later) == 0  # cancelled meanwhile
        counts = tx.backlog(now=retry)
        assert (counts.pending, counts.sent, counts.failed, counts.cancelled) == (5, 1, 0, 2)
        # hook/2 leaves with watchlist a; w's rows to the same address remain.
        assert tx.remove_watchlist("a", later) == 2
        got = tx.claim_due_alerts(now=retry, owner="f", lease=LEASE, limit=10)
        assert [(b.watchlists, len(b.alerts)) for b in got] == [(["w"], 1), (["w"], 1), (["w"], 1)]
        assert tx.backlog(now=retry).cancelled == 4
        assert tx.save_watchlists([watchlist("w", "https://hook/1", "https://hook/2")], later) == 0


def test_refused_data_is_a_storage_error_of_one_line_without_values(sql_store: SqlStore) -> None:
    """A row the database refuses surfaces as a StorageError of one line that
    holds none of the row's values (PostgreSQL's DETAIL repeats the whole
    failing row: a webhook secret or a whole article). Databases only: the
    fake has no column constraints, which no use-case relies on."""
    store = sql_store
    secret = "hunter2-webhook-secret"
    bad = replace(item(1), text=None, summary=secret)  # type: ignore[arg-type]
    with pytest.raises(StorageError) as caught, store.transaction() as tx:
        src = tx.add_source(
            name="s", url="https://x.example", kind="feed", every_seconds=60, links_css=None, now=T0
        )
        tx.store_items(src.id, [bad], T0)
    message = str(caught.value)
    assert "body" in message
    assert "\n" not in message and secret not in message and "INSERT" not in message
    with store.transaction() as tx:
        assert tx.source_names() == set()


def test_admin_queries_share_the_store(db: Database) -> None:
    """The CLI's admin queries run on `SqlStore.session()`; what they write the
    use-cases see, and a failed admin command writes nothing."""
    store = SqlStore(db.engine, db.factory)
    with store.session() as s:
        add_source(
            s,
            name="a",
            url="https://a.example/f",
            kind=None,
            every_seconds=60,
            links_css=None,
            now=T0,
        )
    with pytest.raises(RuntimeError), store.session() as s:
        add_source(
            s,
            name="b",
            url="https://b.example/f",
            kind=None,
            every_seconds=60,
            links_css=None,
            now=T0,
        )
        raise RuntimeError("the command failed after writing")
    with store.transaction() as tx:
        assert tx.source_names() == {"a"}


# ------------------------------------------------- the fake against the database, differentially

OUTCOMES = ("sent", "retry", "failed", "release", "keep")


@st.composite
def delivery_scripts(draw: st.DrawFn) -> tuple[int, list[tuple[int, str, int]], list[Any]]:
    """Matches (item, watchlist, minute) and claim steps (minute, limit, owner, outcomes)."""
    n_items = draw(st.integers(1, 5))
    matches = draw(
        st.lists(
            st.tuples(st.integers(0, n_items - 1), st.sampled_from(["w", "h"]), st.integers(0, 60)),
            min_size=1,
            max_size=8,
        )
    )
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, 120),
                st.integers(1, 4),
                st.sampled_from(["d1", "d2"]),
                st.lists(st.sampled_from(OUTCOMES), min_size=4, max_size=4),
            ),
            min_size=2,
            max_size=8,
        )
    )
    return n_items, matches, sorted(steps)


def play(store: Store, script: tuple[int, list[tuple[int, str, int]], list[Any]]) -> list[Any]:
    """Run a script; return everything observable (ids replaced by URLs and targets)."""
    n_items, found, steps = script
    ids = sorted(setup_items(store, n_items).values())
    with store.transaction() as tx:
        tx.save_watchlists(
            [
                watchlist("w", "https://hook/1", "https://hook/2"),
                watchlist("h", "https://hook/3", digest="hourly"),
            ],
            T0,
        )
    seen: list[Any] = []
    for n, name, minute in found:
        with store.transaction() as tx:
            active = tx.get_watchlist(name)
            at = T0 + timedelta(minutes=minute)
            seen.append(tx.record_matches(ids[n], [(active, match(name))], at, daily_at=time(8)))
    for minute, limit, owner, outcomes in steps:
        now = T0 + timedelta(minutes=minute)
        with store.transaction() as tx:
            got = tx.claim_due_alerts(now=now, owner=owner, lease=LEASE, limit=limit)
            seen.append(
                [
                    (
                        b.watchlist,
                        b.recipient.target,
                        b.digest_period,
                        b.attempts,
                        tuple(a.match.item_url for a in b.alerts),
                    )
                    for b in got
                ]
            )
            for batch, outcome in zip(got, outcomes * 3, strict=False):
                if outcome == "sent":
                    seen.append(tx.mark_sent(batch.ids, owner=owner, now=now))
                elif outcome == "retry":
                    later = now + timedelta(minutes=7)
                    seen.append(
                        tx.schedule_retry(
                            batch.ids, owner=owner, error="503", next_attempt_at=later
                        )
                    )
                elif outcome == "failed":
                    seen.append(tx.mark_failed(batch.ids, owner=owner, error="404"))
                elif outcome == "release":
                    seen.append(tx.release_alerts(batch.ids, owner=owner))
        with store.transaction() as tx:
            seen.append(tx.backlog(now=now))
    return seen


@pytest.fixture(scope="module")
def sql_stores(_databases: dict[str, Database]) -> dict[str, Database]:
    return _databases


@pytest.mark.slow  # ~0.3 s per example on two databases; the scenarios above run in the fast suite
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=delivery_scripts())
def test_the_fake_claims_and_settles_alerts_like_the_databases(
    sql_stores: dict[str, Database], script: tuple[int, list[tuple[int, str, int]], list[Any]]
) -> None:
    expected = play(MemoryStore(), script)
    for backend, database in sql_stores.items():
        _empty(database)
        assert play(SqlStore(database.engine, database.factory), script) == expected, backend


def test_postponed_alerts_count_no_attempt_and_say_when_next_due(store: Store) -> None:
    """The calls the fix branches added: postpone (a peer's Retry-After),
    next_due_after and pending_summary (what a one-shot run leaves)."""
    _three_alerts_to_one_recipient(store)
    now = T0 + timedelta(minutes=1)
    later = now + timedelta(minutes=7)
    with store.transaction() as tx:
        [batch] = tx.claim_due_alerts(now=now, owner="me/1", lease=LEASE, limit=1)
        assert tx.postpone(batch.ids, owner="other/1", note="x", next_attempt_at=later) == 0
        assert tx.postpone(batch.ids, owner="me/1", note="paced", next_attempt_at=later) == 1
        assert tx.next_due_after(now=now) == later
        assert tx.next_due_after(now=now, exclude_recipients=[batch.recipient.id]) is None
        left = tx.pending_summary(now=now, owner_prefix="me/")
    assert (left.pending, left.held, left.held_until) == (3, 0, None)
    assert left.next_due == T0 + timedelta(seconds=1)  # the second alert; the first waits
    with store.transaction() as tx:
        [again] = tx.claim_due_alerts(now=later, owner="other/2", lease=LEASE, limit=1)
        assert again.ids == batch.ids and again.attempts == 0  # pacing is not an attempt
        theirs = tx.pending_summary(now=later, owner_prefix="me/")
    assert (theirs.pending, theirs.held, theirs.held_until) == (2, 1, later + LEASE)


def test_deferred_polls_and_host_quotas(store: Store) -> None:
    """defer_poll hands back only the owner's lease and moves the next poll;
    a claim with a HostQuota takes no more of one host than it allows."""
    from storage.sources import HostQuota

    add_feeds(store, 4, hosts=["a", "a", "a", "b"])
    quota = HostQuota(lambda url: url.split("/")[2], 2, {"a.example": 1})
    with store.transaction() as tx:
        got = tx.claim_due_sources(now=T0, owner="me", lease=LEASE, limit=10, hosts=quota)
    assert [s.name for s in got] == ["s0", "s3"]
    soon = T0 + timedelta(seconds=5)
    with store.transaction() as tx:
        tx.defer_poll(got[0].id, "someone-else", next_poll_at=soon)  # not theirs: no change
        tx.defer_poll(got[1].id, "me", next_poll_at=soon)
        assert tx.claim_due_sources(now=T0, owner="x", lease=LEASE, limit=10, names=["s3"]) == []
        [back] = tx.claim_due_sources(now=soon, owner="x", lease=LEASE, limit=10, names=["s3"])
    assert back.next_poll_at == soon and back.consecutive_failures == 0


def test_stories_are_assigned_once_under_the_decision_given(store: Store) -> None:
    """known_urls, vectors, assign_stories (new keys, joins, idempotence, refusal of a
    non-candidate) and items_without_story agree on the fake and the databases."""
    import numpy as np

    from storage.stories import StoryStorageError

    ids = sorted(setup_items(store, 4).values())
    enc = ("test", "1/title")
    seen: list[tuple[list[int], list[list[int]]]] = []

    def decide(items: Any, reader: Any) -> list[int]:
        heads = reader.heads()
        members = reader.members([h.story_id for h in heads])
        candidates = [[m.item_id for m in members.get(h.story_id, [])] for h in heads]
        seen.append(([m.item_id for m in items], candidates))
        assert reader.stories_of([m.item_id for m in items]) == {m.item_id: None for m in items}
        return [-1, -1, -2][: len(items)] if not heads else [heads[0].story_id] * len(items)

    with store.transaction() as tx:
        assert tx.known_urls(["https://news.example/a/0", "https://news.example/a/9"]) == {
            "https://news.example/a/0"
        }
        tx.save_story_vectors([(ids[0], np.ones(4, dtype=np.float32) / 2)], encoder=enc)
        first = tx.assign_stories(ids[:3], decide, window=timedelta(hours=72), now=T0, encoder=enc)
    assert first[ids[0]] == first[ids[1]] != first[ids[2]]
    assert seen[0] == (ids[:3], [])
    with store.transaction() as tx:
        left = tx.items_without_story(10, encoder=enc)
        assert [m.item_id for m in left] == [ids[3]] and left[0].vector is None
        [again] = tx.items_without_story(10, encoder=enc, ids=[ids[3]])
        assert again.concepts == frozenset() and again.title == "Title 3"
        assert (
            tx.assign_stories(ids[:3], decide, window=timedelta(hours=72), now=T0, encoder=enc)
            == {}
        )
        joined = tx.assign_stories(ids, decide, window=timedelta(hours=72), now=T0, encoder=enc)
    assert joined == {ids[3]: min(first.values())}
    assert sorted(sorted(c) for c in seen[-1][1]) == [[ids[0], ids[1]], [ids[2]]]
    with store.transaction() as tx:
        assert tx.items_without_story(10) == []
    with pytest.raises(StoryStorageError), store.transaction() as tx:
        ids2 = tx.store_items(1, [item(7)], T0)
        tx.assign_stories(
            list(ids2.values()), lambda i, c: [999], window=timedelta(hours=1), now=T0, encoder=enc
        )


def test_pending_items_are_listed_by_published_time_and_fetch_time(store: Store) -> None:
    """unassigned_item_ids and items_without_story(fetched_since=...) agree on the
    fake and the databases: oldest published first, bounded by when an item
    was stored (the drain) or published (rebuild), assigned items left out."""
    later = T0 + timedelta(days=5)
    early = setup_items(store, 3)  # all published at T0 (see item()), stored at T0
    older = [replace(item(7), published=T0 - timedelta(hours=2)), item(5)]
    with store.transaction() as tx:  # stored later, one published before the others
        late = tx.store_items(1, older, later)
    ids = sorted(early.values())
    late_ids = [late["https://news.example/a/7"], late["https://news.example/a/5"]]
    with store.transaction() as tx:
        assert tx.unassigned_item_ids(10) == [late_ids[0], *ids, late_ids[1]]
        assert tx.unassigned_item_ids(2) == [late_ids[0], ids[0]]
        assert tx.unassigned_item_ids(10, fetched_since=later) == late_ids
        assert tx.unassigned_item_ids(10, since=T0) == [*ids, late_ids[1]]
        got = tx.items_without_story(10, fetched_since=later - timedelta(seconds=1))
        assert [m.item_id for m in got] == late_ids
    _into_story(store, [ids[1], late_ids[0]])
    with store.transaction() as tx:
        assert tx.unassigned_item_ids(10) == [ids[0], ids[2], late_ids[1]]


def _choose(story: int | None) -> Any:
    return lambda _item, _candidates: story


def _into_story(store: Store, item_ids: list[int], story: int | None = None) -> int:
    """Put items into one story (a new one when `story` is None), as the crawl's
    assignment does before matches are recorded: storage.stories on the
    databases, the fake's own `join_story` on the fake."""
    if isinstance(store, MemoryStore):
        return store.join_story(item_ids, story)
    assert isinstance(store, SqlStore)
    with store.session() as s:
        for item_id in item_ids:
            story = assign_story(
                s, item_id, _choose(story), window=timedelta(hours=72), now=T0
            ).story_id
    assert story is not None
    return story


def test_fold_owes_one_alert_per_story_and_names_the_other_outlets(store: Store) -> None:
    ids = setup_items(store, 4)
    a, b, c, d = (ids[f"https://news.example/a/{i}"] for i in range(4))
    with store.transaction() as tx:
        other = tx.add_source(
            name="yonhap",
            url="https://yonhap.example/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
        )
        ko = tx.store_items(other.id, [replace(item(9), language="ko", title="한국어")], T0)
        e = ko["https://news.example/a/9"]
    first = _into_story(store, [a])
    with store.transaction() as tx:
        tx.save_watchlists(
            [
                replace(watchlist("folded", "https://hook/1", "https://hook/2"), stories="fold"),
                watchlist("every", "https://hook/3"),
            ],
            T0,
        )
        found = [(w, match(w.watchlist.name)) for w in tx.active_watchlists()]
        tx.record_matches(a, found, T0)
    _into_story(store, [b, e], first)
    second = _into_story(store, [c])
    _into_story(store, [d], second)
    with store.transaction() as tx:
        for item_id in (b, e, c, d):
            tx.record_matches(item_id, found, T0)
        wl = {w.watchlist.name: w.id for w in tx.active_watchlists()}
        # folded: 2 recipients x 2 stories; every: 1 recipient x 5 items
        assert (tx.count_alerts(wl["folded"]), tx.count_alerts(wl["every"])) == (4, 5)
        ctx = tx.story_contexts([a, e, c, 12345])
    assert set(ctx) == {a, e, c} and ctx[a].story_id == ctx[e].story_id == first
    assert [(x.source, x.language, x.title) for x in ctx[a].also] == [("yonhap", "ko", "한국어")]
    assert [(x.source, x.language) for x in ctx[e].also] == [("wire", "en")]  # one per outlet
    assert ctx[e].en_title == "Title 0" and ctx[c].also == () and ctx[c].story_id == second


def test_a_baseline_stores_matches_without_alerts_and_ends_with_a_success(store: Store) -> None:
    """scheduler.first_poll's storage side: `alert=False` writes the match and
    no outbox row; a new source is pending a baseline unless `alert_backlog`,
    and a successful poll (not a failed one) ends it."""
    ids = sorted(setup_items(store, 2).values())
    with store.transaction() as tx:
        tx.save_watchlists([watchlist("w", "https://hook/1")], T0)
        active = tx.get_watchlist("w")
        assert tx.record_matches(ids[0], [(active, match("w"))], T0, alert=False) == 1
        assert tx.record_matches(ids[1], [(active, match("w"))], T0) == 1
        assert tx.count_matches(active.id, ids) == 2
        assert tx.count_alerts(active.id) == 1
        eager = tx.add_source(
            name="eager",
            url="https://eager.example/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
            alert_backlog=True,
        )
    assert not eager.baseline_pending
    with store.transaction() as tx:
        (wire,) = tx.claim_due_sources(now=T0, owner="a", lease=LEASE, limit=1, names=["wire"])
        assert wire.baseline_pending
        failed = PollOutcome(wire.id, "failed", error="boom")
        tx.record_poll(failed, now=T0, next_poll_at=T0)
    with store.transaction() as tx:
        (wire,) = tx.claim_due_sources(now=T0, owner="a", lease=LEASE, limit=1, names=["wire"])
        assert wire.baseline_pending
        tx.record_poll(PollOutcome(wire.id, "ok"), now=T0, next_poll_at=T0)
    with store.transaction() as tx:
        (wire,) = tx.claim_due_sources(now=T0, owner="a", lease=LEASE, limit=1, names=["wire"])
    assert not wire.baseline_pending


def test_polls_written_together_are_seen_by_the_same_transaction(store: Store) -> None:
    """SqlStore writes the polls of one transaction in one executemany: a
    read later in that transaction, and the commit, see every one of them,
    in order; a rolled-back transaction writes none."""
    with store.transaction() as tx:
        ids = [
            tx.add_source(
                name=f"s{n}",
                url=f"https://s{n}.example/f",
                kind=None,
                every_seconds=600,
                links_css=None,
                now=T0,
            ).id
            for n in range(3)
        ]
    with store.transaction() as tx:
        assert len(tx.claim_due_sources(now=T0, owner="p", lease=LEASE, limit=5)) == 3
    later = T0 + timedelta(minutes=5)
    with store.transaction() as tx:
        for sid in ids[:2]:
            tx.record_poll(PollOutcome(sid, "not_modified"), now=T0, next_poll_at=later)
        # the polled sources' leases are gone and they are due at `later`: visible at once
        got = tx.claim_due_sources(now=later, owner="q", lease=LEASE, limit=5)
        assert sorted(s.id for s in got) == ids[:2]
        tx.record_poll(PollOutcome(ids[2], "failed", error="HTTP 500"), now=T0, next_poll_at=later)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.record_poll(PollOutcome(ids[2], "failed", error="lost"), now=later, next_poll_at=later)
        raise RuntimeError("rolled back")
    with store.transaction() as tx:
        got = tx.claim_due_sources(now=later + 2 * LEASE, owner="r", lease=LEASE, limit=5)
    by_id = {s.id: s for s in got}
    assert (by_id[ids[2]].last_error, by_id[ids[2]].consecutive_failures) == ("HTTP 500", 1)
    assert by_id[ids[0]].last_success_at == T0 and by_id[ids[2]].last_success_at is None


POLL_STATUSES = st.sampled_from(["ok", "not_modified", "failed"])
VALIDATOR = st.none() | st.sampled_from(['"e1"', '"e2"', "Tue, 01 Dec 2026 10:00:00 GMT"])


@st.composite
def poll_scripts(draw: st.DrawFn) -> list[list[tuple[int, PollOutcome, int | None]]]:
    """Transactions of polls over three sources: any order, any outcome."""
    script = []
    for _ in range(draw(st.integers(1, 4))):
        batch = []
        for _ in range(draw(st.integers(1, 5))):
            sid, status = draw(st.integers(0, 2)), draw(POLL_STATUSES)
            outcome = PollOutcome(
                sid,
                status,  # type: ignore[arg-type]
                etag=draw(VALIDATOR),
                last_modified=draw(VALIDATOR),
                body_hash=draw(st.none() | st.sampled_from(["h1", "h2"])),
                error=draw(st.sampled_from(["HTTP 503", "timeout"]))
                if status == "failed"
                else None,
                detected_kind=draw(st.none() | st.sampled_from(["feed", "page"])),
            )
            batch.append((sid, outcome, draw(st.none() | st.integers(60, 3600))))
        script.append(batch)
    return script


def play_polls(store: Store, script: list[list[tuple[int, PollOutcome, int | None]]]) -> list[Any]:
    with store.transaction() as tx:
        ids = [
            tx.add_source(
                name=f"s{n}",
                url=f"https://s{n}.example/f",
                kind=None,
                every_seconds=600,
                links_css=None,
                now=T0,
            ).id
            for n in range(3)
        ]
    for step, batch in enumerate(script):
        now = T0 + timedelta(minutes=step)
        with store.transaction() as tx:
            for sid, outcome, interval in batch:
                outcome = replace(outcome, source_id=ids[sid])
                tx.record_poll(outcome, now=now, next_poll_at=now, interval=interval)
    with store.transaction() as tx:
        got = tx.claim_due_sources(now=T0 + LEASE, owner="x", lease=LEASE, limit=5)
    return sorted(((ids.index(s.id), replace(s, id=0)) for s in got), key=lambda p: p[0])


@pytest.mark.slow  # a few tenths of a second per example on two databases
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=poll_scripts())
def test_the_databases_record_polls_like_the_fake(
    sql_stores: dict[str, Database], script: list[list[tuple[int, PollOutcome, int | None]]]
) -> None:
    """The one-statement, batched record_poll of SqlStore keeps exactly the
    rules of the fake: a failure keeps validators, kind and last success and
    counts up; a success resets the count; only `ok` writes validators."""
    expected = play_polls(MemoryStore(), script)
    for backend, database in sql_stores.items():
        _empty(database)
        assert play_polls(SqlStore(database.engine, database.factory), script) == expected, backend


def add_feeds(
    store: Store, n: int, prefix: str = "s", hosts: Sequence[str] | None = None
) -> list[int]:
    """Sources `{prefix}0` … of kind feed, on `hosts` (default: each on a host
    of its own); their ids."""
    with store.transaction() as tx:
        return [
            tx.add_source(
                name=f"{prefix}{k}",
                url=f"https://{hosts[k] if hosts else f'{prefix}{k}'}.example/{k}",
                kind="feed",
                every_seconds=600,
                links_css=None,
                now=T0,
            ).id
            for k in range(n)
        ]


# A poll's lease fences its fetch-state write: (lease holder at the save, the
# lease's end relative to the save) → written? "us" saves; "them" claimed the
# source after our lease ran out; None: never leased (a source fed from outside).
FENCES = [
    ("us", LEASE, True),
    ("us", -LEASE, True),  # ours ran out, nobody took it: still ours to write
    ("them", LEASE, False),
    ("them", -LEASE, False),  # theirs ran out too: our poll is still the older one
    (None, None, True),
]


def test_a_poll_writes_its_fetch_state_only_under_its_own_lease_or_none(store: Store) -> None:
    """Every outcome kind under every lease state, saved in one transaction
    (one executemany on SqlStore, fenced and unfenced rows mixed): a source
    another owner holds keeps its lease and its state untouched; the others
    are written, and a save without an owner (not a crawl's) is not fenced."""
    outcomes = ["ok", "not_modified", "failed"]
    cases = [(f, o) for f in FENCES for o in outcomes]
    ids = add_feeds(store, len(cases) + 1)
    saved_at = T0 + timedelta(minutes=1)
    for sid, ((holder, ends, _), _) in zip(ids, cases, strict=False):
        if holder is not None:
            assert ends is not None
            with store.transaction() as tx:  # a claim `ends` around the save
                assert tx.claim_due_sources(
                    now=saved_at + ends - LEASE, owner=holder, lease=LEASE, limit=1,
                    names=[f"s{ids.index(sid)}"], due_only=False,
                )  # fmt: skip
    later = T0 + timedelta(hours=1)
    with store.transaction() as tx:
        for sid, (_, status) in zip(ids, cases, strict=False):
            error = "HTTP 500" if status == "failed" else None
            outcome = PollOutcome(sid, status, error=error, etag="e1")  # type: ignore[arg-type]
            tx.record_poll(outcome, now=saved_at, next_poll_at=later, interval=900, owner="us")
        # an owner-less save of the last source (say an admin command's) is not fenced
        tx.record_poll(PollOutcome(ids[-1], "ok"), now=saved_at, next_poll_at=later)
    with store.transaction() as tx:  # who may claim now: a lease "them" kept is honoured
        free = {s.id: s for s in tx.claim_due_sources(
            now=saved_at, owner="z", lease=LEASE, limit=100, due_only=False)}  # fmt: skip
    for sid, ((holder, ends, written), status) in zip(ids, cases, strict=False):
        case = (holder, ends, status)
        held_by_them = holder == "them" and ends is not None and ends > timedelta(0)
        assert (sid not in free) == held_by_them, case
        if sid not in free:
            continue
        src = free[sid]
        assert (src.last_polled_at == saved_at) == written, case
        assert (src.next_poll_at == later) == written, case
        failed = written and status == "failed"
        assert (src.last_error, src.consecutive_failures) == (
            ("HTTP 500", 1) if failed else (None, 0)
        ), case
        assert src.etag == ("e1" if written and status == "ok" else None), case
    assert free[ids[-1]].last_polled_at == saved_at


def test_fenced_polls_are_counted_in_one_warning(
    sql_store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The executemany's row count tells how many polls were fenced off (on
    both drivers): one warning for the batch, none when all were written."""
    ids = add_feeds(sql_store, 5, "f")
    with sql_store.transaction() as tx:
        tx.claim_due_sources(now=T0, owner="them", lease=LEASE, limit=2, names=["f0", "f1"])
        tx.claim_due_sources(now=T0, owner="us", lease=LEASE, limit=3)
    for owners, skipped in ((["us"] * 5, 2), (["them"] * 2 + ["us"] * 3, 0)):
        caplog.clear()
        # (at_level: a CLI test before this one may have left the root logger at ERROR)
        with caplog.at_level("WARNING", logger="storage.sources"), sql_store.transaction() as tx:
            for sid, owner in zip(ids, owners, strict=True):
                outcome = PollOutcome(sid, "not_modified")
                tx.record_poll(outcome, now=T0, next_poll_at=T0, owner=owner)
        warned = [r.getMessage() for r in caplog.records if "poll_state" in r.getMessage()]
        expected = f"poll_state status=skipped polls={skipped} reason=lease_lost"
        assert warned == ([expected] if skipped else []), warned
