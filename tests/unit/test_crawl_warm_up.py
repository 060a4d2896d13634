"""What a first crawl builds while its parse workers start, so that its first
save does not (scheduler.crawl.warm_matcher, StoryAssigner.load_soon), and
what a re-crawl leaves unbuilt."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from datetime import timedelta

import pytest

from alerts.alert_records import Document, Term, Watchlist
from alerts.embedding import HashingEncoder
from alerts.matching.engine import Matcher, compile_watchlists
from scheduler import crawl as crawl_module
from scheduler.compiled_watchlists import CompiledWatchlists
from scheduler.crawl import crawl, warm_matcher
from scheduler.story_assignment import StoryAssigner
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer
from tests.support.markers import needs_hyperscan
from tests.unit.usecase_support import Clock, add_source, add_watchlist, crawl_context, rss


def _screen_built(matcher: Matcher) -> bool:
    screen = matcher._backend._screen  # type: ignore[union-attr]
    return screen is not None and screen._db is not None


@needs_hyperscan
@pytest.mark.parametrize(
    "terms", [["Pantsir"], ["판치르", "Панцирь", "地对空导弹"], [f"term {n}" for n in range(300)]]
)
def test_warming_builds_the_screen_the_first_item_would_build(terms: list[str]) -> None:
    matcher = compile_watchlists([Watchlist("w", tuple(map(Term, terms)))], backend="hyperscan")
    assert not _screen_built(matcher)  # built on the first item, not when compiled
    warm_matcher(CompiledWatchlists(matcher, {})).join(30)
    assert _screen_built(matcher)
    found = matcher.match(Document(title=f"News of {terms[0]} today"))
    assert [m.watchlist for m in found] == ["w"]


class _Broken(Matcher):
    def match(self, doc: Document, only: object = None) -> list[object]:  # type: ignore[override]
        raise RuntimeError("cannot match")


def test_a_warm_up_that_fails_only_logs_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    broken = _Broken((), None)
    with caplog.at_level(logging.DEBUG, logger="newswatch.crawl"):
        warm_matcher(CompiledWatchlists(broken, {})).join(30)
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
    assert "matcher_warm status=failed" in caplog.text


def test_load_soon_builds_the_feature_extractors_too() -> None:
    assigner = StoryAssigner(HashingEncoder, timedelta(hours=72))
    assert assigner._gazetteer is None
    assigner.load_soon().join(30)
    assert assigner._gazetteer is not None  # the first save with a match builds nothing


def test_a_first_crawl_warms_the_matcher_and_a_recrawl_does_not(
    http_server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    warmed: list[threading.Thread] = []
    real = crawl_module.warm_matcher

    def spy(compiled: CompiledWatchlists) -> threading.Thread:
        warmed.append(real(compiled))
        return warmed[-1]

    monkeypatch.setattr(crawl_module, "warm_matcher", spy)
    store = MemoryStore()
    add_watchlist(store, [])
    add_source(store, "isw", http_server.route("/f", (200, {"ETag": '"v1"'}, rss("SAM site seen"))))
    ctx = dataclasses.replace(crawl_context(store, Clock()), stories=None)
    assert asyncio.run(crawl(ctx, parse_workers=0)).new_items == 1
    assert len(warmed) == 1
    warmed[0].join(30)
    again = asyncio.run(crawl(ctx, parse_workers=0))
    assert (again.new_items, again.failed) == (0, [])
    assert len(warmed) == 1  # polled before: nothing new, nothing warmed
