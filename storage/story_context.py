"""What an alert says about its item's story, read at send time.

Read when the alert is rendered, not when it is queued, so "also reported by"
names every outlet known by then (an alert retried an hour later names the
outlets that reported in that hour too).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.alert_records import AlsoReported, StoryContext
from storage.tables import ItemRow, SourceRow, StoryRow

MAX_ALSO = 20  # outlets named per alert; a story of hundreds names the first ones


def story_contexts(session: Session, item_ids: Collection[int]) -> dict[int, StoryContext]:
    """{item id: its story} for the items that belong to a story."""
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(ItemRow.id, ItemRow.story_id).where(
            ItemRow.id.in_(ids), ItemRow.story_id.is_not(None)
        )
    ).all()
    owned = {item_id: story_id for item_id, story_id in rows}
    story_ids = sorted({s for s in owned.values() if s is not None})
    if not story_ids:
        return {}
    stories = {s.id: s for s in session.scalars(select(StoryRow).where(StoryRow.id.in_(story_ids)))}
    members = session.execute(
        select(ItemRow.id, ItemRow.story_id, SourceRow.name, ItemRow.language)
        .add_columns(ItemRow.title, ItemRow.url)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .where(ItemRow.story_id.in_(story_ids))
        .order_by(ItemRow.published, ItemRow.id)
    ).all()
    by_story: dict[int, list[tuple[int, AlsoReported]]] = {}
    for mid, sid, source, language, title, url in members:
        by_story.setdefault(sid or 0, []).append((mid, AlsoReported(source, language, title, url)))
    return {
        item_id: build_context(
            sid, stories[sid].title, stories[sid].en_title, item_id, by_story.get(sid, [])
        )
        for item_id, sid in owned.items()
        if sid is not None and sid in stories
    }


def build_context(
    story_id: int,
    title: str,
    en_title: str | None,
    item_id: int,
    members: list[tuple[int, AlsoReported]],
) -> StoryContext:
    """The context of one item from its story's members in published order:
    the other sources' items, one per (source, language), at most MAX_ALSO.
    Shared with storage.memory so the fake names the same outlets."""
    own = next((m.source for i, m in members if i == item_id), None)
    seen: set[tuple[str, str | None]] = set()
    also: list[AlsoReported] = []
    for i, m in members:
        key = (m.source, m.language)
        if i == item_id or m.source == own or key in seen:
            continue
        seen.add(key)
        also.append(m)
    return StoryContext(story_id, title, en_title, tuple(also[:MAX_ALSO]))
