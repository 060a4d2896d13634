"""The story step of the crawl and of `stories rebuild` on the in-memory store
(scheduler/story_assignment.py): every new item that matched gets a story in
the save transaction, before its matches and outbox rows; the others are left
pending and the drain gives them one; an encoder failure loses no item and no
alert; rebuild streams in batches."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from alerts.alert_records import Recipient
from alerts.embedding import HashingEncoder, Vectors
from scheduler.crawl import crawl, drain_stories
from scheduler.story_assignment import StoryAssigner, assign_unassigned
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer
from tests.unit.usecase_support import (
    Clock,
    RiggedStore,
    add_source,
    add_watchlist,
    crawl_context,
    rss,
)

WEEK = timedelta(days=7)
# Two events: same-script copies of one SAM report, and an unrelated item.
FEED_A = rss("SAM battery moved to Crimea, satellite images show", "Weather today")
FEED_B = rss("SAM battery moved to Crimea, satellite images show it", host="other.org")


class CountingEncoder(HashingEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.encoded += texts
        return super().encode(texts)


class BrokenEncoder(HashingEncoder):
    def encode(self, texts: Sequence[str]) -> Vectors:
        raise RuntimeError("model files are corrupt")


def assigner(encoder: HashingEncoder) -> StoryAssigner:
    return StoryAssigner(lambda: encoder, timedelta(hours=72))


def stories(store: MemoryStore) -> dict[str, int]:
    """{item title: story id} of every stored item (all must have one)."""
    with store.transaction() as tx:
        assert tx.items_without_story(1000) == []
        t: Any = tx._t  # the fake's tables
        return {r.item.title: r.story_id for r in t.items.values() if r.story_id is not None}


def test_crawl_assigns_each_new_item_before_its_matches(http_server: LocalHTTPServer) -> None:
    inner = MemoryStore()
    store = RiggedStore(inner)
    add_watchlist(inner, [Recipient("webhook", "https://hook.example/")])
    add_source(inner, "a", http_server.route("/a", (200, {}, FEED_A)))
    add_source(inner, "b", http_server.route("/b", (200, {}, FEED_B)))
    seen_story: list[int | None] = []

    def record_matches(tx: Any, item_id: int, *a: Any, **kw: Any) -> int:
        seen_story.append(tx._t.items[item_id].story_id)  # already assigned?
        return int(tx.record_matches(item_id, *a, **kw))

    store.overrides["record_matches"] = record_matches
    enc = CountingEncoder()
    ctx = dataclasses.replace(crawl_context(store, Clock()), stories=assigner(enc))
    report = asyncio.run(crawl(ctx, parse_workers=0))
    assert report.new_items == 3 and len(seen_story) == 2 and None not in seen_story
    assert len(enc.encoded) == 2 * 2  # the matched items only (two passes: "title+text")
    with inner.transaction() as tx:  # the item that matched nothing waits for the drain
        assert [m.title for m in tx.items_without_story(1000)] == ["Weather today"]
    assert drain_stories(ctx) == 1 and drain_stories(ctx) == 0
    found = stories(inner)
    sam = [sid for title, sid in found.items() if title.startswith("SAM")]
    assert len(set(sam)) == 1 and found["Weather today"] not in sam
    assert len(enc.encoded) == 2 * 3  # each new item once (two passes: "title+text")

    again = asyncio.run(crawl(ctx, parse_workers=0))
    assert again.new_items == 0 and stories(inner) == found
    assert len(enc.encoded) == 2 * 3  # stored items are not encoded again


def test_an_encoder_failure_loses_no_item_and_no_alert(http_server: LocalHTTPServer) -> None:
    store = MemoryStore()
    add_watchlist(store, [Recipient("webhook", "https://hook.example/")])
    add_source(store, "a", http_server.route("/a", (200, {}, FEED_A)))
    ctx = dataclasses.replace(crawl_context(store, Clock()), stories=assigner(BrokenEncoder()))
    report = asyncio.run(crawl(ctx, parse_workers=0))
    assert (report.new_items, report.new_matches, report.failed) == (2, 1, [])
    assert drain_stories(ctx) == 1
    assert len(stories(store)) == 2  # zero vectors: each its own story, none lost
    with store.transaction() as tx:
        assert tx.backlog(now=Clock()()).pending == 1


def test_rebuild_assigns_stored_items_in_batches(http_server: LocalHTTPServer) -> None:
    store = MemoryStore()
    add_source(store, "a", http_server.route("/a", (200, {}, FEED_A)))
    add_source(store, "b", http_server.route("/b", (200, {}, FEED_B)))
    asyncio.run(crawl(crawl_context(store, Clock()), parse_workers=0))  # no stories
    with store.transaction() as tx:
        assert len(tx.items_without_story(1000)) == 3
    enc = CountingEncoder()
    done = assign_unassigned(assigner(enc), store, Clock(), batch=2)
    assert done == 3 and len(enc.encoded) == 2 * 3
    found = stories(store)
    sam = {sid for title, sid in found.items() if title.startswith("SAM")}
    assert len(sam) == 1 and found["Weather today"] not in sam
    assert assign_unassigned(assigner(enc), store, Clock(), batch=2) == 0


def test_a_poll_too_big_to_pre_encode_is_encoded_in_chunks_in_the_transaction(
    http_server: LocalHTTPServer, monkeypatch: Any
) -> None:
    """Above PRE_ENCODE_MAX matched items, prepare keeps no vectors in memory;
    assign_new encodes them chunk by chunk and the stories are the same."""
    import scheduler.story_assignment as sa

    monkeypatch.setattr(sa, "PRE_ENCODE_MAX", 0)
    monkeypatch.setattr(sa, "ENCODE_CHUNK", 2)
    store = MemoryStore()
    add_watchlist(store)  # the SAM items match: their stories are decided in the save
    add_source(store, "a", http_server.route("/a", (200, {}, FEED_A)))
    add_source(store, "b", http_server.route("/b", (200, {}, FEED_B)))
    enc = CountingEncoder()
    ctx = dataclasses.replace(crawl_context(store, Clock()), stories=assigner(enc))
    assert asyncio.run(crawl(ctx, parse_workers=0)).new_items == 3
    assert len(enc.encoded) == 2 * 2  # each matched item once, none lost between chunks
    assert drain_stories(ctx) == 1
    assert len(enc.encoded) == 2 * 3
    found = stories(store)
    sam = {sid for title, sid in found.items() if title.startswith("SAM")}
    assert len(sam) == 1 and found["Weather today"] not in sam  # joined: vectors were used


def test_the_assigners_gazetteer_names_what_gazetteer_matcher_names() -> None:
    """StoryAssigner compiles the gazetteer with pyahocorasick (10 ms, not
    Hyperscan's 1.2 s at every start): on every labelled item of the story
    bench, the anchors must be those of `alerts.gazetteer.gazetteer_matcher()`."""
    from pathlib import Path

    import yaml

    from alerts.alert_records import Document
    from alerts.gazetteer import anchor_concepts, gazetteer_matcher

    ours, reference = assigner(HashingEncoder()).gazetteer(), gazetteer_matcher()
    data = Path(__file__).resolve().parents[2] / "bench" / "data"
    named = 0
    for path in sorted(data.glob("stories_*.yaml")):
        events = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("events") or []
        for event in events:
            for _, _, language, title, lead in event["items"]:
                doc = Document(title=title, summary=lead, language=language)
                got = anchor_concepts(ours, doc)
                assert got == anchor_concepts(reference, doc), title
                named += len(got)
    assert named > 100  # the sets name places and organisations: the check is not empty


def test_a_drain_with_nothing_pending_never_loads_the_encoder() -> None:
    """The daemon's `stories` job runs every 10 s: with nothing pending it must
    not load the model (~1 s of CPU and ~120 MB) into a daemon that never needed it."""
    from scheduler.story_assignment import drain_pending

    loads: list[int] = []

    def encoder() -> HashingEncoder:
        loads.append(1)
        return HashingEncoder()

    store = MemoryStore()
    assert drain_pending(StoryAssigner(encoder, timedelta(hours=72)), store, Clock()) == 0
    assert loads == []


def test_a_first_crawl_loads_the_encoder_at_its_start_and_a_recrawl_does_not(
    http_server: LocalHTTPServer,
) -> None:
    """Sources never polled: the encoder is loaded in a thread of its own as the crawl
    starts (`StoryAssigner.load_soon`), not by the first save that needs it, which
    waited for the load (~0.2 s) while every parsed feed queued behind it. Sources
    polled before: nothing is loaded when nothing is new."""
    import threading

    loads: list[str] = []  # the threads that asked for the encoder
    encoder = HashingEncoder()

    def slot() -> HashingEncoder:
        loads.append(threading.current_thread().name)
        return encoder

    def loaded_by() -> set[str]:
        for thread in threading.enumerate():
            if thread.name == "newswatch-encoder-load":
                thread.join(10)
        return set(loads)

    store = MemoryStore()
    add_watchlist(store, [Recipient("webhook", "https://hook.example/")])
    add_source(store, "a", http_server.route("/a", (200, {"ETag": '"v1"'}, FEED_A)))
    ctx = dataclasses.replace(
        crawl_context(store, Clock()), stories=StoryAssigner(slot, timedelta(hours=72))
    )
    assert asyncio.run(crawl(ctx, parse_workers=0)).new_items == 2
    assert "newswatch-encoder-load" in loaded_by()

    loads.clear()
    ctx = dataclasses.replace(ctx, stories=StoryAssigner(slot, timedelta(hours=72)))
    report = asyncio.run(crawl(ctx, parse_workers=0))
    assert (report.new_items, report.failed) == (0, [])
    assert loaded_by() == set()  # polled before, nothing new: no load, in no thread


def test_a_process_that_ends_during_the_early_load_waits_for_it() -> None:
    """A crawl whose sources all fail ends before the load: the process must not
    exit with the load thread cut off mid-load (or logging while the interpreter
    shuts down, which aborts a process); it exits once the load is over."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import logging, sys, time
        from datetime import timedelta
        from alerts.embedding import HashingEncoder
        from scheduler.story_assignment import StoryAssigner

        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")

        def slot():
            time.sleep(0.5)  # a model still loading when the main thread returns
            logging.getLogger("probe").info("encoder loaded")
            return HashingEncoder()

        StoryAssigner(slot, timedelta(hours=72)).load_soon()
        """
    )
    root = Path(__file__).resolve().parents[2]  # the repository: `-c` imports from cwd
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    assert "encoder loaded" in done.stderr and "Fatal Python error" not in done.stderr
