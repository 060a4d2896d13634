"""CONTRACT.md, "Commands": a new source's first poll stores its items but
alerts only on those published within NEWSWATCH_FIRST_POLL_ALERTS (an item
without a date counts as old); `backfill` reaches the rest. Items that
appear on later polls alert whatever their date. One alert per (item,
watchlist, recipient) however often `backfill` and `crawl` run.

Through the CLI against a local feed and a local webhook, on both databases."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import CLI
from tests.support.httpserver import LocalHTTPServer, Request, Response

ENV = {
    "NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1",
    "NEWSWATCH_PER_HOST_DELAY": "0",
    "NEWSWATCH_WEBHOOK_PER_SECOND": "0",
}

# path -> (title, age; None: undated).
FIRST: dict[str, tuple[str, timedelta | None]] = {
    "/1h": ("Pantsir battery moved to Kaliningrad", timedelta(hours=1)),
    "/3h": ("Pantsir radar hit in Kherson overnight", timedelta(hours=3)),
    # the same event as /1h, a day earlier: one story, so `fold` owes it nothing more
    "/30h": ("Pantsir battery moved to Kaliningrad", timedelta(hours=30)),
    "/400d": ("Pantsir exported to the UAE, archive report", timedelta(days=400)),
    "/undated": ("Undated note on Pantsir maintenance in Serbia", None),
}


def _rss(server: LocalHTTPServer, entries: dict[str, tuple[str, timedelta | None]]) -> str:
    now = datetime.now(UTC)
    body = "".join(
        f"<item><title>{title}</title><link>{server.url(path)}</link><guid>{path}</guid>"
        f"<description>{title}.</description>"
        + (f"<pubDate>{format_datetime(now - age)}</pubDate>" if age is not None else "")
        + "</item>"
        for path, (title, age) in entries.items()
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>w</title>{body}</channel></rss>'
    )


def _setup(
    cli: CLI, server: LocalHTTPServer, tmp_path: Path, *, stories: str = "each"
) -> list[dict[str, object]]:
    """A watchlist with two webhooks (two recipients) and a new feed source;
    returns the list every webhook body lands in."""
    received: list[dict[str, object]] = []

    def hook(req: Request) -> Response:
        received.append({"hook": req.path, **json.loads(req.body)})
        return 200, {"Content-Type": "text/plain"}, b"ok"

    one, two = server.route("/hook/one", hook), server.route("/hook/two", hook)
    wl = tmp_path / "w.yaml"
    wl.write_text(
        "watchlists:\n  - name: air\n    terms: [Pantsir]\n"
        f"    stories: {stories}\n"
        f"    notify:\n      - webhook: {one}\n      - webhook: {two}\n",
        encoding="utf-8",
    )
    assert cli("watchlist", "import", str(wl)).code == 0
    server.serve("/feed.xml", _rss(server, FIRST), "application/rss+xml")
    r = cli("source", "add", server.url("/feed.xml"), "--kind", "feed", "--name", "wire")
    assert r.code == 0, r.err
    return received


def _paths(received: list[dict[str, object]]) -> Counter[tuple[str, str]]:
    return Counter(
        (str(r["hook"]), str(r["item"]["url"]).rsplit("/", 1)[1])  # type: ignore[index]
        for r in received
    )


@pytest.mark.parametrize(
    ("window", "alerted"),
    [
        ("30m", set()),
        ("2h", {"1h"}),
        ("4h", {"1h", "3h"}),
        ("2d", {"1h", "3h", "30h"}),  # an undated item counts as old, whatever the window
    ],
)
def test_first_poll_alerts_within_the_configured_window(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path, window: str, alerted: set[str]
) -> None:
    received = _setup(cli, http_server, tmp_path)
    r = cli("crawl", env={**ENV, "NEWSWATCH_FIRST_POLL_ALERTS": window})
    assert r.code == 0, r.err
    assert len(cli("matches", "--json").out.splitlines()) == len(FIRST)  # all stored and matched
    assert _paths(received) == Counter(
        {(f"/hook/{h}", p): 1 for h in ("one", "two") for p in alerted}
    )


def test_later_polls_alert_whatever_the_date(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    received = _setup(cli, http_server, tmp_path)
    assert cli("crawl", env=ENV).code == 0
    later = {
        **FIRST,
        "/old-new": ("Pantsir in a 2009 photo, newly posted", timedelta(days=6000)),
        "/undated-new": ("Pantsir convoy seen, no date given", None),
    }
    http_server.serve("/feed.xml", _rss(http_server, later), "application/rss+xml")
    assert cli("crawl", env=ENV).code == 0
    paths = {p for _, p in _paths(received)}
    assert paths == {"1h", "3h", "old-new", "undated-new"}


@pytest.mark.parametrize("stories", ["each", "fold"])
def test_backfill_reaches_the_first_polls_old_items_once(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path, stories: str
) -> None:
    """The baseline's old items are matched without alerts; `backfill` owes
    them their alerts, once per recipient (per story under `fold`); a second
    backfill, a re-poll and a re-import send nothing more."""
    received = _setup(cli, http_server, tmp_path, stories=stories)
    assert cli("crawl", env=ENV).code == 0
    first = sum(_paths(received).values())
    assert {p for _, p in _paths(received)} <= {"1h", "3h"} and first >= 2
    if stories == "each":
        assert first == 4  # two recent items, two recipients

    dry = cli("backfill", "--watchlist", "air", "--dry-run", env=ENV)
    assert dry.code == 0 and "would match 5, 0 new, " in dry.out, dry.out
    unalerted = 3 if stories == "each" else int(dry.out.split(", 0 new, ")[1].split()[0])
    assert f", {unalerted} matched before without alerts" in dry.out and unalerted >= 3
    r = cli("backfill", "--watchlist", "air", env=ENV)
    assert r.code == 0, r.err
    assert cli("crawl", env=ENV).code == 0  # delivers what the backfill queued
    assert cli("watchlist", "import", str(tmp_path / "w.yaml")).code == 0  # same recipients
    again = cli("backfill", "--watchlist", "air", env=ENV)
    assert again.code == 0 and "0 new, 0 alerts queued" in again.out, again.out
    if stories == "each":  # under fold an item of a story already alerted owes none
        dry = cli("backfill", "--watchlist", "air", "--dry-run", env=ENV)
        assert "without alerts" not in dry.out, dry.out
    assert cli("crawl", env=ENV).code == 0

    story_of = {
        str(m["item"]["url"]).rsplit("/", 1)[1]: m["story"]
        for m in map(json.loads, cli("matches", "--json").out.splitlines())
    }
    assert set(story_of) == {p.lstrip("/") for p in FIRST}
    assert story_of["30h"] == story_of["1h"]  # so `fold` meets a story already alerted
    sent = _paths(received)
    for hook in ("/hook/one", "/hook/two"):
        mine = [p for (h, p), n in sent.items() for _ in range(n) if h == hook]
        if stories == "each":  # every matched item, exactly once
            assert sorted(mine) == sorted(story_of), (hook, mine)
        else:  # every story of a matched item, exactly once
            assert sorted(story_of[p] for p in mine) == sorted(set(story_of.values())), mine
    queued = int(r.out.split(" alerts queued")[0].rsplit(", ", 1)[1])
    assert queued == sum(sent.values()) - first > 0
