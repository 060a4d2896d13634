"""Data for the web view's tests and bench, written straight into the tables.

`scenario` is a small, hand-made world a person can check on screen: three
languages, a failing source, failed and pending alerts, and hostile feed
text. `bulk` makes the large generated one the bench measures.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.orm import Session

from storage.stories import ActiveStory, StoredMember, assign_story
from storage.tables import (
    ItemRow,
    MatchRow,
    OutboxRow,
    RecipientRow,
    RuleRow,
    SourceRow,
    StoryRow,
    WatchlistRow,
)

SLACK_SECRET = "https://hooks.slack.com/services/T0SECRET/B0SECRET/xoxsecrettoken1234"

HOSTILE_TITLES = [
    "<script>window.__pwned = 1; alert(1)</script> Pantsir convoy",
    '<img src=x onerror="window.__pwned=2"> Pantsir strike',
    'Pantsir "><svg onload=alert(3)> parade',
    "Pantsir \u202egnirts desrever\u202c at the border",
    'Pantsir <a href="javascript:alert(4)">click</a> report',
]
HOSTILE_URLS = [
    "javascript:alert(5)//pantsir",
    "data:text/html,<script>alert(6)</script>",
    'https://evil.example/x"onmouseover="alert(7)',
]


@dataclass(frozen=True)
class Scenario:
    now: datetime
    titles: dict[str, str]  # what a person looks for -> the title on screen
    failing_source: str
    failing_error: str
    stories: dict[str, int] | None = None  # story label -> story id (with stories=True)


# Which scenario items report one event (item id -> story label). Items 1-3
# are one story in three outlets and three languages, whose first item is
# Korean (so its headline is foreign and the English title shows beside it);
# 5-6 another; every hostile item (100-107) a story of its own; item 4 has
# none, as an item the story step has not reached yet.
STORY_OF = {1: "pantsir", 2: "pantsir", 3: "pantsir", 5: "brics", 6: "brics",
            **{j: f"hostile-{j}" for j in range(100, 108)}}  # fmt: skip


def assign_stories(engine: Engine, now: datetime, story_of: dict[int, str]) -> dict[str, int]:
    """Give items their stories through `storage.stories.assign_story` (as the
    crawl does), oldest published first; the decision is the fixed `story_of`
    map rather than the engine's, so tests know the outcome."""

    def decide(item: StoredMember, candidates: Sequence[ActiveStory]) -> int | None:
        label = story_of[item.item_id]
        for c in candidates:
            if any(story_of.get(m.item_id) == label for m in c.members):
                return c.story_id
        return None

    with Session(engine) as session, session.begin():
        ids = session.scalars(
            select(ItemRow.id).where(ItemRow.id.in_(story_of)).order_by(ItemRow.published)
        ).all()
        out: dict[str, int] = {}
        for item_id in ids:
            done = assign_story(session, item_id, decide, window=timedelta(hours=72), now=now)
            out[story_of[item_id]] = done.story_id
    return out


def _source(i: int, name: str, now: datetime, error: str | None = None) -> dict[str, Any]:
    return {
        "id": i, "name": name, "url": f"https://{name}.example/feed", "kind": "feed",
        "every_seconds": 900, "enabled": True, "next_poll_at": now + timedelta(minutes=i),
        "last_polled_at": now - timedelta(minutes=5),
        "last_success_at": None if error else now - timedelta(minutes=5),
        "last_error": error, "consecutive_failures": 3 if error else 0,
        "created_at": now - timedelta(days=60),
    }  # fmt: skip


def _item(i: int, source_id: int, title: str, lang: str, published: datetime,
          url: str | None = None, body: str = "") -> dict[str, Any]:  # fmt: skip
    return {
        "id": i, "source_id": source_id, "url": url or f"https://news{source_id}.example/a/{i}",
        "guid": f"g{i}", "title": title, "summary": body, "body": body, "published": published,
        "fetched_at": published, "language": lang, "content_hash": f"{i:064x}",
    }  # fmt: skip


def _match(i: int, item_id: int, wl: int, terms: list[str], snippet: str, spelling: str,
           at: datetime) -> dict[str, Any]:  # fmt: skip
    start = max(snippet.find(spelling), 0)
    hit = {"rule": terms[0], "spelling": spelling, "field": "title", "start": start,
           "end": start + len(spelling)}  # fmt: skip
    return {"id": i, "item_id": item_id, "watchlist_id": wl, "terms": terms, "hits": [hit],
            "snippets": [snippet], "matched_at": at}  # fmt: skip


def _watchlists(conn: Any, now: datetime) -> None:
    conn.execute(insert(WatchlistRow), [
        {"id": 1, "name": "air-defence", "digest": "none", "languages": [], "exclude": [],
         "examples": {}, "created_at": now, "updated_at": now},
        {"id": 2, "name": "brics", "digest": "none", "languages": [], "exclude": [],
         "examples": {}, "created_at": now, "updated_at": now},
    ])  # fmt: skip
    conn.execute(insert(RuleRow), [
        {"watchlist_id": 1, "position": 0, "kind": "term", "text": "Pantsir",
         "aliases": ["판치르", "Панцирь"]},
        {"watchlist_id": 1, "position": 1, "kind": "term", "text": "SAM", "aliases": []},
        {"watchlist_id": 2, "position": 0, "kind": "term", "text": "BRICS", "aliases": ["브릭스"]},
    ])  # fmt: skip
    conn.execute(insert(RecipientRow), [
        {"id": 1, "watchlist_id": 1, "position": 0, "channel": "slack", "target": SLACK_SECRET,
         "secret": None, "active": True},
        {"id": 2, "watchlist_id": 1, "position": 1, "channel": "email",
         "target": "analyst@example.org", "secret": None, "active": True},
    ])  # fmt: skip


def scenario(engine: Engine, now: datetime, *, history: int = 0, stories: bool = False) -> Scenario:
    """The hand-made world (ids fixed, so tests can name them). `history`
    adds that many older matched items over the last four weeks (for
    screenshots whose trend lines have a shape). `stories` groups the items
    as `STORY_OF` says."""
    error = "fetch failed: HTTP 503 Service Unavailable"
    reports = [
        ("pantsir_en", 1, "Pantsir batteries moved near Pyongyang", "en", "Pantsir", "Pantsir", 1),
        ("pantsir_ko", 2, "판치르 방공체계 평양 인근 배치", "ko", "Pantsir", "판치르", 1),
        ("pantsir_ru", 3, "Панцирь замечен у Пхеньяна", "ru", "Pantsir", "Панцирь", 1),
        ("sam_en", 1, "New SAM site photographed", "en", "SAM", "SAM", 1),
        ("brics_ko", 2, "브릭스 정상회의 카잔에서 개막", "ko", "BRICS", "브릭스", 2),
        ("brics_en", 4, "BRICS summit opens in Kazan", "en", "BRICS", "BRICS", 2),
    ]
    items, matches, titles = [], [], {}
    for k, (key, src, title, lang, term, spelling, wl) in enumerate(reports, start=1):
        at = now - timedelta(hours=k)
        items.append(_item(k, src, title, lang, at - timedelta(days=k % 3)))
        matches.append(_match(k, k, wl, [term], f"… {title} …", spelling, at))
        titles[key] = title
    for j, title in enumerate(HOSTILE_TITLES + ["Pantsir link"] * len(HOSTILE_URLS), start=100):
        url = (
            HOSTILE_URLS[j - 100 - len(HOSTILE_TITLES)] if j - 100 >= len(HOSTILE_TITLES) else None
        )
        at = now - timedelta(days=2, minutes=j)
        items.append(_item(j, 4, title, "en", at, url=url))
        matches.append(_match(j, j, 1, ["Pantsir"], f"… {title} …", "Pantsir", at))
    with engine.begin() as conn:
        conn.execute(insert(SourceRow), [
            _source(1, "isw", now), _source(2, "yonhap", now), _source(3, "tass", now),
            _source(4, "wire", now), _source(5, "broken", now, error),
        ])  # fmt: skip
        _watchlists(conn, now)
        conn.execute(insert(ItemRow), items)
        conn.execute(insert(MatchRow), matches)
        conn.execute(insert(OutboxRow), [
            {"match_id": 1, "item_id": 1, "watchlist_id": 1, "recipient_id": 1, "status": "failed",
             "attempts": 8, "next_attempt_at": now, "last_error": "slack: HTTP 404 no_service",
             "created_at": now},
            {"match_id": 2, "item_id": 2, "watchlist_id": 1, "recipient_id": 2,
             "status": "pending", "attempts": 2, "next_attempt_at": now + timedelta(minutes=7),
             "last_error": "smtp: connection refused", "created_at": now},
        ])  # fmt: skip
        if history:
            _history(conn, now, history)
    made = assign_stories(engine, now, STORY_OF) if stories else None
    return Scenario(now, titles, "broken", error, made)


def _history(conn: Any, now: datetime, n: int) -> None:
    rng = random.Random(3)
    spread = [("Pantsir", "en", 3), ("Pantsir", "ko", 2), ("Pantsir", "ru", 2), ("SAM", "en", 2),
              ("BRICS", "en", 3), ("BRICS", "ko", 2), ("BRICS", "zh", 1)]  # fmt: skip
    items, matches = [], []
    for k in range(n):
        term, lang, _ = rng.choices(spread, weights=[w for *_, w in spread])[0]
        days = 28 * (1 - rng.random() ** 1.6)  # more mentions lately
        at = now - timedelta(days=days + 1, hours=rng.randrange(24))
        i = 1000 + k
        items.append(_item(i, 1 + k % 4, f"Earlier report {k} on {term}", lang, at))
        matches.append(_match(i, i, 2 if term == "BRICS" else 1, [term], "…", term, at))
    conn.execute(insert(ItemRow), items)
    conn.execute(insert(MatchRow), matches)


def bulk(
    engine: Engine, now: datetime, *, items: int, matches: int, sources: int = 200,
    stories: int = 0,
) -> None:  # fmt: skip
    """A large world: `items` items over 90 days from `sources` sources (a
    tenth failing), `matches` of them matched, a few thousand alerts, and
    `stories` stories (see `_bulk_stories`)."""
    rng = random.Random(7)
    langs, terms = ["en", "ko", "zh", "ru", "fr"], ["Pantsir", "SAM", "BRICS", "S-400", "Kazan"]
    with engine.begin() as conn:
        conn.execute(insert(SourceRow), [
            _source(i, f"source-{i:03d}", now, "HTTP 500" if i % 10 == 0 else None)
            for i in range(1, sources + 1)
        ])  # fmt: skip
        _watchlists(conn, now)
        batch: list[dict[str, Any]] = []
        for i in range(1, items + 1):
            published = now - timedelta(seconds=rng.randrange(90 * 86400))
            batch.append(_item(i, rng.randrange(1, sources + 1), f"Headline {i} about events",
                               rng.choice(langs), published, body="x" * 200))  # fmt: skip
            if len(batch) == 5000:
                conn.execute(insert(ItemRow), batch)
                batch = []
        if batch:
            conn.execute(insert(ItemRow), batch)
        matched = rng.sample(range(1, items + 1), matches)
        rows = [
            _match(n, item_id, 1 + n % 2, [rng.choice(terms)], "… a snippet with Pantsir …",
                   "Pantsir", now - timedelta(seconds=rng.randrange(90 * 86400)))
            for n, item_id in enumerate(matched, start=1)
        ]  # fmt: skip
        for k in range(0, len(rows), 5000):
            conn.execute(insert(MatchRow), rows[k : k + 5000])
        conn.execute(insert(OutboxRow), [
            {"match_id": n, "item_id": r["item_id"], "watchlist_id": r["watchlist_id"],
             "recipient_id": 1 + n % 2, "status": ("failed", "pending", "sent")[n % 3],
             "attempts": n % 8, "next_attempt_at": now, "last_error": "HTTP 500",
             "created_at": r["matched_at"]}
            for n, r in enumerate(rows[: min(len(rows), 6000)], start=1) if r["watchlist_id"] == 1
        ])  # fmt: skip
        if stories:
            _bulk_stories(conn, now, rng, matched[:stories], items)


def _bulk_stories(conn: Any, now: datetime, rng: random.Random, heads: list[int],
                  items: int) -> None:  # fmt: skip
    """One story per matched item of `heads`, each joined by 1-5 other items
    (any sources and languages, matched or not), written straight into
    `stories` and `items.story_id`: at bench scale the assignment engine is
    not what is measured. `first_seen`/`last_seen` are set from the members."""
    free = list(range(1, items + 1))
    rng.shuffle(free)
    taken = set(heads)
    members: list[list[int]] = []
    for head in heads:
        group = [head]
        while len(group) < 1 + rng.randint(1, 5) and free:
            other = free.pop()
            if other not in taken:
                taken.add(other)
                group.append(other)
        members.append(group)
    published = dict(conn.execute(select(ItemRow.id, ItemRow.published)).all())
    conn.execute(insert(StoryRow), [
        {"id": sid, "first_seen": min(published[i] for i in group),
         "last_seen": max(published[i] for i in group), "title": f"Story {sid} headline",
         "title_language": "ko", "en_title": f"English headline of story {sid}",
         "item_count": len(group), "created_at": now}
        for sid, group in enumerate(members, start=1)
    ])  # fmt: skip
    conn.execute(
        update(ItemRow).where(ItemRow.id == bindparam("iid")).values(story_id=bindparam("sid")),
        [{"iid": i, "sid": sid} for sid, group in enumerate(members, start=1) for i in group],
    )
