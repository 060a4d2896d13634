"""Stories off the crawl's critical path, on SQLite and PostgreSQL (no fakes):
items that match a watchlist get their story in the save transaction, the
others are left pending (`story_id` NULL) and the drain assigns them.

What must hold whatever the order in which one event's items arrive (a
matched item before or after unmatched ones, in one save or several, with or
without a drain in between, the drain late or early): after the drain every
item is in exactly one story, the event is one story, and a `fold` watchlist
owes exactly one alert for it (per recipient), naming that story. A second
event (a hard negative in another script and topic) stays a story of its own
and owes nothing. Two replicas (two processes' assigners on one database)
draining while a third saves agree on one story per event.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from alerts.alert_records import Recipient, Term, Watchlist
from crawler.crawl_records import Item, PollOutcome, Source
from newswatch.app import App, build_app
from newswatch.config import Settings
from scheduler.compiled_watchlists import load_watchlists
from scheduler.crawl import drain_stories, save_outcomes
from storage.repository import SqlStore
from storage.sources import add_source
from storage.stories import story_sizes
from storage.tables import ItemRow, OutboxRow, StoryRow
from storage.watchlists import save_watchlists
from tests.conftest import Database

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

# One event: M* match the watchlist ("SAM"), U* report it without the term.
EVENT = {
    "M1": "SAM battery moved to Crimea, satellite images show",
    "M2": "SAM battery moved to Crimea, new satellite images show",
    "U1": "Air-defence battery moved to Crimea, satellite images show",
    "U2": "Battery of air defence moved to Crimea, satellite images show",
}
OTHER = "Typhoon Haishen makes landfall on Okinawa"  # another event, matched by nothing


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


def make_app(db: Database, clock: Clock) -> App:
    settings = Settings(database_url=db.url, story_encoder="hashing")
    return build_app(settings, clock=clock, env={}, store=SqlStore(db.engine, db.factory))


def setup(app: App) -> None:
    with app.session() as s:
        save_watchlists(
            s,
            [
                Watchlist(
                    name="folded",
                    rules=(Term("SAM"),),
                    notify=(
                        Recipient("webhook", "http://127.0.0.1:9/a"),
                        Recipient("webhook", "http://127.0.0.1:9/b"),
                    ),
                    stories="fold",
                )
            ],
            T0,
        )


def source(app: App, name: str) -> Source:
    with app.session() as s:
        return add_source(
            s,
            name=name,
            url=f"https://{name}.example/feed",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
            alert_backlog=True,
        )


def item(label: str, title: str, hours: float) -> Item:
    url = f"https://{label.lower()}.example/a/{label}"
    return Item(
        url=url,
        guid=url,
        title=title,
        summary="",
        text=title,
        published=T0 + timedelta(hours=hours),
        language="en",
        content_hash=f"h-{label}",
    )


def save(app: App, labels: Sequence[str]) -> None:
    """One crawl's save: each label's item from a source of its own, one batch."""
    titles = {**EVENT, "X": OTHER}
    polls = [
        (
            source(app, f"src-{label.lower()}"),
            item(label, titles[label], hours=list(titles).index(label)),
        )
        for label in labels
    ]
    ctx = app.crawl_context()
    compiled = load_watchlists(app.store)
    save_outcomes(
        ctx,
        [(src, PollOutcome(src.id, "ok", items=(it,))) for src, it in polls],
        compiled,
        random.Random(1),
    )


def story_of(app: App) -> dict[str, int | None]:
    with app.session() as s:
        rows = s.execute(select(ItemRow.url, ItemRow.story_id)).all()
    return {url.rsplit("/", 1)[1]: sid for url, sid in rows}


def fold_rows(app: App) -> list[int | None]:
    with app.session() as s:
        return list(s.scalars(select(OutboxRow.story_id).order_by(OutboxRow.id)))


def check(app: App) -> None:
    """After a full drain: one story for the event, one for the other, one
    alert per recipient naming the event's story, counts that agree."""
    got = story_of(app)
    assert None not in got.values(), got
    event = {got[k] for k in got if k in EVENT}
    assert len(event) == 1, got
    if "X" in got:
        assert got["X"] not in event
    assert fold_rows(app) == [*event, *event]  # two recipients, one row each
    with app.session() as s:
        sizes = story_sizes(s)
        counts = {sid: n for sid, n in s.execute(select(StoryRow.id, StoryRow.item_count))}
    assert sizes == counts


# (saves of one crawl each, drain after every save?)
ORDERS = [
    ([["M1", "U1", "U2", "X"], ["M2"]], False),  # matched first, in one save
    ([["U1", "U2", "X"], ["M1"], ["M2"]], False),  # unmatched first, no drain between
    ([["U1", "U2", "X"], ["M1"], ["M2"]], True),  # unmatched first, drained before M1
    ([["U1"], ["M2"], ["U2"], ["M1"], ["X"]], False),  # interleaved
    ([["U1"], ["M2"], ["U2"], ["M1"], ["X"]], True),
    ([["M2", "M1"], ["U2", "X", "U1"]], True),  # the later item first
]


@pytest.mark.parametrize("deferred", [True, False], ids=["deferred", "inline"])
@pytest.mark.parametrize(("saves", "drain_each"), ORDERS)
def test_fold_alerts_once_per_event_whatever_the_order_of_matched_and_unmatched(
    db: Database, saves: list[list[str]], drain_each: bool, deferred: bool
) -> None:
    """`inline` is the design before the drain (every item in its save): the
    same stories and alerts come out of both."""
    app = make_app(db, Clock())
    app.story_assigner().defer_unmatched = deferred
    setup(app)
    for labels in saves:
        save(app, labels)
        got = story_of(app)
        # matched items have their story as soon as they are saved; the others wait
        assert all((got[k] is not None) == (k.startswith("M") or not deferred) for k in labels)
        if drain_each:
            drain_stories(app.crawl_context())
    assert len(fold_rows(app)) == 2  # queued before any drain: alerts never wait for it
    drain_stories(app.crawl_context())
    check(app)
    assert drain_stories(app.crawl_context()) == 0


def test_a_drain_assigns_only_recently_stored_items(db: Database) -> None:
    """Items stored longer ago than the story window without a story (the
    archive) are `stories rebuild`'s, not the drain's: the drain stays bounded."""
    clock = Clock()
    app = make_app(db, clock)
    setup(app)
    save(app, ["U1"])
    clock.at = T0 + app.settings.story_window_delta + timedelta(hours=1)
    save(app, ["U2"])
    assert drain_stories(app.crawl_context()) == 1
    got = story_of(app)
    assert got["U1"] is None and got["U2"] is not None


def test_replicas_draining_beside_a_saving_one_agree(db: Database) -> None:
    """Two replicas' assigners drain the same pending items while a third
    saves matched items of the same event: one story, one alert per
    recipient, counts that agree (the assignment lock orders them all)."""
    first = make_app(db, Clock())
    setup(first)
    save(first, ["U1", "U2", "X"])
    replicas = [make_app(db, Clock()) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run(i: int) -> None:
        try:
            start.wait()
            if i == 0:
                save(replicas[0], ["M1"])
                save(replicas[0], ["M2"])
            else:
                drain_stories(replicas[i].crawl_context())
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    drain_stories(first.crawl_context())
    check(first)
    with first.session() as s:
        assert s.scalar(select(func.count()).select_from(StoryRow)) == 2


def test_the_drain_stops_at_its_budget_and_goes_on_later(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon's job drains for a budget, between batches; what is left
    waits for the next run, and nothing is assigned twice."""
    import scheduler.story_assignment as sa

    monkeypatch.setattr(sa, "DRAIN_BATCH", 2)
    app = make_app(db, Clock())
    setup(app)
    save(app, ["U1", "U2", "X"])
    assert drain_stories(app.crawl_context(), budget=0) == 0
    assert drain_stories(app.crawl_context(), keep_going=lambda: False) == 0
    calls: list[int] = []

    def one_batch() -> bool:  # the first check passes, the one after the first batch not
        calls.append(1)
        return len(calls) < 2

    assert drain_stories(app.crawl_context(), keep_going=one_batch) == 2
    assert sum(v is None for v in story_of(app).values()) == 1
    assert drain_stories(app.crawl_context()) == 1
    assert None not in story_of(app).values()
