"""Source queries: rows in, `crawler.models.Source` records out."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crawler.models import PollOutcome, Source, SourceKind
from storage import StorageError
from storage.tables import ItemRow, PageLinkRow, SourceRow


class SourceExists(StorageError):
    pass


class SourceNotFound(StorageError):
    pass


def normalize_name(name: str) -> str:
    """Source names are stored and looked up in NFC, so that `café` typed
    precomposed or with a combining accent is one source, not two."""
    return unicodedata.normalize("NFC", name)


def to_record(row: SourceRow, items_count: int = 0) -> Source:
    return Source(
        id=row.id,
        name=row.name,
        url=row.url,
        kind=row.kind,  # type: ignore[arg-type]
        every_seconds=row.every_seconds,
        links_css=row.links_css,
        enabled=row.enabled,
        etag=row.etag,
        last_modified=row.last_modified,
        body_hash=row.body_hash,
        next_poll_at=row.next_poll_at,
        last_polled_at=row.last_polled_at,
        last_success_at=row.last_success_at,
        last_error=row.last_error,
        consecutive_failures=row.consecutive_failures,
        items_count=items_count,
        current_interval_seconds=row.current_interval_seconds,
    )


def add_source(
    session: Session,
    *,
    name: str,
    url: str,
    kind: SourceKind | None,
    every_seconds: int,
    links_css: str | None,
    now: datetime,
) -> Source:
    name = normalize_name(name)
    if session.scalar(select(SourceRow.id).where(SourceRow.name == name)) is not None:
        raise SourceExists(f"a source named {name!r} already exists")
    row = SourceRow(
        name=name,
        url=url,
        kind=kind,
        every_seconds=every_seconds,
        links_css=links_css,
        enabled=True,
        consecutive_failures=0,
        next_poll_at=now,
        created_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as e:
        raise SourceExists(f"a source named {name!r} already exists") from e
    return to_record(row)


def source_names(session: Session) -> set[str]:
    return set(session.scalars(select(SourceRow.name)))


def source_urls(session: Session) -> set[str]:
    return set(session.scalars(select(SourceRow.url)))


def list_sources(session: Session, *, enabled_only: bool = False) -> list[Source]:
    counts = (
        select(ItemRow.source_id, func.count().label("n")).group_by(ItemRow.source_id).subquery()
    )
    stmt = (
        select(SourceRow, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.source_id == SourceRow.id)
        .order_by(SourceRow.name)
    )
    if enabled_only:
        stmt = stmt.where(SourceRow.enabled.is_(True))
    return [to_record(row, int(n)) for row, n in session.execute(stmt)]


def get_source(session: Session, name: str) -> Source:
    name = normalize_name(name)
    row = session.scalar(select(SourceRow).where(SourceRow.name == name))
    if row is None:
        raise SourceNotFound(f"no source named {name!r}")
    return to_record(row)


def remove_source(session: Session, name: str) -> None:
    name = normalize_name(name)
    result = session.execute(delete(SourceRow).where(SourceRow.name == name))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise SourceNotFound(f"no source named {name!r}")


def set_kind(session: Session, source_id: int, kind: SourceKind) -> None:
    session.execute(update(SourceRow).where(SourceRow.id == source_id).values(kind=kind))


def record_poll(
    session: Session,
    outcome: PollOutcome,
    *,
    now: datetime,
    next_poll_at: datetime,
    interval: int | None = None,
) -> None:
    """Write a poll's result into the source's fetch state.

    Failures keep the previous validators (ETag, Last-Modified, body hash) so
    a transient error does not force a full re-download afterwards.
    """
    values: dict[str, object] = {
        "last_polled_at": now,
        "next_poll_at": next_poll_at,
        "lease_owner": None,
        "lease_until": None,
        "current_interval_seconds": interval,
    }
    if outcome.status == "failed":
        values["last_error"] = outcome.error
        values["consecutive_failures"] = SourceRow.consecutive_failures + 1
    else:
        values.update(last_success_at=now, last_error=None, consecutive_failures=0)
        if outcome.status == "ok":
            values.update(
                etag=outcome.etag, last_modified=outcome.last_modified, body_hash=outcome.body_hash
            )
        if outcome.detected_kind is not None:
            values["kind"] = outcome.detected_kind
    session.execute(update(SourceRow).where(SourceRow.id == outcome.source_id).values(**values))


def claim_due_sources(
    session: Session,
    *,
    now: datetime,
    owner: str,
    lease: timedelta,
    limit: int,
    names: Sequence[str] | None = None,
    due_only: bool = True,
) -> list[Source]:
    """Take a lease on sources to poll, so no two processes poll one at once.

    On Postgres the rows are locked with FOR UPDATE SKIP LOCKED, so replicas
    racing for work never block each other; on SQLite the write lock of the
    transaction serialises claimers. A lease that expires (its holder died)
    makes the source claimable again.
    """
    stmt = select(SourceRow).where(
        SourceRow.enabled.is_(True),
        or_(SourceRow.lease_until.is_(None), SourceRow.lease_until < now),
    )
    if due_only:
        stmt = stmt.where(or_(SourceRow.next_poll_at.is_(None), SourceRow.next_poll_at <= now))
    if names:
        stmt = stmt.where(SourceRow.name.in_([normalize_name(n) for n in names]))
    stmt = stmt.order_by(SourceRow.next_poll_at, SourceRow.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for row in rows:
        row.lease_owner = owner
        row.lease_until = now + lease
    session.flush()
    return [to_record(r) for r in rows]


def release_lease(session: Session, source_id: int, owner: str) -> None:
    session.execute(
        update(SourceRow)
        .where(SourceRow.id == source_id, SourceRow.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def seen_links(session: Session, source_id: int) -> frozenset[str]:
    return frozenset(
        session.scalars(select(PageLinkRow.url).where(PageLinkRow.source_id == source_id))
    )


def add_seen_links(session: Session, source_id: int, links: Sequence[str], now: datetime) -> None:
    from storage.items import insert_ignore

    if links:
        rows = [{"source_id": source_id, "url": u, "first_seen": now} for u in dict.fromkeys(links)]
        session.execute(insert_ignore(session, PageLinkRow, ["source_id", "url"]), rows)


def update_source(
    session: Session,
    name: str,
    *,
    url: str,
    kind: str | None,
    every_seconds: int,
    links_css: str | None,
) -> bool:
    """Update the settings of the source named `name`; False if there is none."""
    name = normalize_name(name)
    row = session.scalar(select(SourceRow).where(SourceRow.name == name))
    if row is None:
        return False
    if row.url != url:
        row.etag = row.last_modified = row.body_hash = None
    row.url, row.every_seconds, row.links_css = url, every_seconds, links_css
    if kind is not None:
        row.kind = kind
    return True
