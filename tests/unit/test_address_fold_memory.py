"""One message per address and item across watchlists on the in-memory store
(the fast twin of tests/integration/test_address_fold.py), and the pure plan
of storage.alert_groups."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts.address_keys import address_key
from alerts.alert_records import Hit, Recipient, Term, Watchlist, WatchlistMatch
from crawler.crawl_records import Item
from scheduler.deliver import DeliveryReport, deliver_due
from scheduler.http_poster import HttpPoster
from storage.alert_groups import GroupRow, components, plan
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer, Request
from tests.unit.usecase_support import T0, Clock, add_source, delivery_context, http


def deliver(store: MemoryStore, clock: Clock) -> DeliveryReport:
    async def main() -> DeliveryReport:
        async with http() as client:
            return await deliver_due(delivery_context(store, clock), HttpPoster(client))

    return asyncio.run(main())


def setup(store: MemoryStore, url: str, names: list[str]) -> int:
    with store.transaction() as tx:
        tx.save_watchlists(
            [Watchlist(n, (Term(n),), notify=(Recipient("webhook", url),)) for n in names], T0
        )
    sid = add_source(store, "isw", "https://example.org/feed")
    with store.transaction() as tx:
        it = Item("https://example.org/1", "1", "One", "", " ".join(names), T0, "en", "1")
        return tx.store_items(sid, [it], T0)[it.url]


def match(store: MemoryStore, item: int, names: list[str]) -> None:
    with store.transaction() as tx:
        found = [
            (
                a,
                WatchlistMatch(
                    a.watchlist.name, (a.watchlist.name,), (Hit("x", "x", "body", 0, 1),)
                ),
            )
            for a in tx.active_watchlists()
            if a.watchlist.name in names
        ]
        tx.record_matches(item, found, T0)


def receiver(http_server: LocalHTTPServer) -> tuple[str, list[dict[str, object]]]:
    got: list[dict[str, object]] = []

    def handle(req: Request) -> tuple[int, dict[str, str], bytes]:
        got.append(json.loads(req.body))
        return 200, {}, b"ok"

    return http_server.route("/hook", handle), got


def test_two_watchlists_one_webhook_one_post(http_server: LocalHTTPServer) -> None:
    store, clock = MemoryStore(), Clock()
    url, got = receiver(http_server)
    item = setup(store, url, ["a", "b"])
    match(store, item, ["a", "b"])
    assert deliver(store, clock).sent == 2
    assert [g["watchlists"] for g in got] == [["a", "b"]]
    match(store, item, ["a", "b"])  # a re-poll: nothing new
    assert deliver(store, clock).handled == 0 and len(got) == 1


def test_a_late_match_folds_into_the_sent_message(http_server: LocalHTTPServer) -> None:
    store, clock = MemoryStore(), Clock()
    url, got = receiver(http_server)
    item = setup(store, url, ["a", "b"])
    match(store, item, ["a"])
    assert deliver(store, clock).sent == 1
    match(store, item, ["b"])
    assert deliver(store, clock).handled == 0 and len(got) == 1
    rows = sorted(store._tables.outbox.values(), key=lambda o: o.id)
    assert [(o.status, o.folded_into) for o in rows] == [("sent", None), ("sent", rows[0].id)]


def test_address_key_is_per_channel_target_and_secret() -> None:
    assert address_key("email", "a@Example.ORG") == address_key("email", "a@example.org")
    assert address_key("email", "A@example.org") != address_key("email", "a@example.org")
    assert address_key("webhook", "https://h/x", "s1") != address_key("webhook", "https://h/x")
    assert address_key("webhook", "https://h/x") != address_key("slack", "https://h/x")
    assert "h/x" not in address_key("webhook", "https://h/x")


# ---------------------------------------------------------------- the pure plan

NOW = T0 + timedelta(hours=1)


def row(i: int, addr: str, item: int, story: int | None = None, **kw: object) -> GroupRow:
    values: dict[str, object] = {
        "status": "pending",
        "lease_owner": None,
        "lease_until": None,
        "next_attempt_at": T0,
        "created_at": T0 + timedelta(seconds=i),
    }
    values.update(kw)
    return GroupRow(i, addr, item, story, **values)  # type: ignore[arg-type]


MINE = {"lease_owner": "me", "lease_until": NOW + timedelta(minutes=10)}


def test_plan_takes_the_rest_of_a_group_and_leads_by_the_oldest() -> None:
    p = plan([row(2, "x", 1, **MINE), row(1, "x", 1)], owner="me", now=NOW)
    assert p.take == [1] and p.leader == {1: 1, 2: 1} and not p.release and not p.fold


def test_plan_waits_for_a_member_leased_elsewhere_or_not_due() -> None:
    other = {"lease_owner": "other", "lease_until": NOW + timedelta(minutes=5)}
    assert plan([row(1, "x", 1, **MINE), row(2, "x", 1, **other)], owner="me", now=NOW).release == [
        1
    ]
    later = {"next_attempt_at": NOW + timedelta(minutes=1)}
    assert plan([row(1, "x", 1, **MINE), row(2, "x", 1, **later)], owner="me", now=NOW).release == [
        1
    ]


def test_plan_folds_into_the_row_that_carried_the_message() -> None:
    sent = row(1, "x", 1, status="sent")
    folded = row(2, "x", 9, story=5, status="sent", folded_into=1)
    p = plan([sent, row(3, "x", 1, **MINE)], owner="me", now=NOW)
    assert p.fold == {3: 1}
    p = plan([folded, row(4, "x", 8, story=5, **MINE)], owner="me", now=NOW)
    assert p.fold == {4: 1}  # via the folded row, to the carrier


def test_components_join_by_item_and_by_fold_story_per_address() -> None:
    rows = [
        row(1, "x", 1, story=7),  # fold, story 7
        row(2, "x", 2, story=7),  # fold, same story: joined
        row(3, "x", 2),  # each, same item as 2: joined
        row(4, "y", 1, story=7),  # another address: apart
        row(5, "x", 3),  # each, another item of the story: apart
    ]
    got = sorted(sorted(r.id for r in c) for c in components(rows))
    assert got == [[1, 2, 3], [4], [5]]


@given(
    st.lists(
        st.tuples(
            st.sampled_from("xyz"), st.integers(1, 4), st.one_of(st.none(), st.integers(1, 2))
        ),
        max_size=12,
    )
)
def test_components_are_a_partition_closed_under_the_relation(
    spec: list[tuple[str, int, int | None]],
) -> None:
    rows = [row(i, a, item, story) for i, (a, item, story) in enumerate(spec)]
    comps = components(rows)
    where = {r.id: n for n, c in enumerate(comps) for r in c}
    assert sorted(where) == [r.id for r in rows]
    for r in rows:
        for s in rows:
            related = r.address_key == s.address_key and (
                r.item_id == s.item_id or (r.story_id is not None and r.story_id == s.story_id)
            )
            if related:
                assert where[r.id] == where[s.id]
    for c in comps:  # and each component is connected through the relation
        assert len({r.address_key for r in c}) == 1
