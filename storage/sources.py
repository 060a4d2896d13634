"""Source queries: rows in, `crawler.crawl_records.Source` records out."""

from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    Table,
    Text,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Case, Update

from crawler.crawl_records import PollOutcome, SeenVersion, Source, SourceKind
from storage import StorageError
from storage.leases import dead_tokens, liveness
from storage.tables import ItemRow, PageLinkRow, SourceRow

# Most due sources a per-host claim looks through to fill its slots (a
# query of two columns; beyond that many due sources the daemon is far
# behind anyway, and the oldest are served first).
HOST_SCAN_LIMIT = 10_000
# Candidates picked beyond a claim's limit (plus as many again as the limit):
# replicas claim the head of the same queue, and rows another claim has locked
# are skipped (FOR UPDATE SKIP LOCKED), so a claim of exactly `limit`
# candidates came back short whenever two replicas raced (bench/scale.py:
# two replicas polled less than one). Any subset of the picks keeps every
# host within its quota, so locking the first `limit` free ones is safe.
CLAIM_SPARE = 8

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HeldSources:
    """Sources another live process holds a lease on (skipped by this claim)."""

    count: int
    until: datetime | None  # the latest expiry among them


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
        spider=row.spider,
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
        baseline_pending=bool(row.baseline_pending),
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
    spider: str | None = None,
    alert_backlog: bool = False,
) -> Source:
    """A new source; its first poll is a baseline unless `alert_backlog`."""
    name = normalize_name(name)
    if session.scalar(select(SourceRow.id).where(SourceRow.name == name)) is not None:
        raise SourceExists(f"a source named {name!r} already exists")
    row = SourceRow(
        name=name,
        url=url,
        kind=kind,
        spider=spider,
        every_seconds=every_seconds,
        links_css=links_css,
        enabled=True,
        consecutive_failures=0,
        next_poll_at=now,
        created_at=now,
        baseline_pending=not alert_backlog,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as e:
        raise SourceExists(f"a source named {name!r} already exists") from e
    return to_record(row)


def source_names(session: Session) -> set[str]:
    return set(session.scalars(select(SourceRow.name)))


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


def poll_params(
    outcome: PollOutcome,
    *,
    now: datetime,
    next_poll_at: datetime,
    interval: int | None = None,
    owner: str | None = None,
) -> dict[str, object]:
    """The parameters of RECORD_POLL for one poll (see record_poll).

    Every outcome fills the same keys, so every poll runs the one statement
    (compiled and cached once) and polls can share one executemany."""
    failed = outcome.status == "failed"
    return {
        "p_id": outcome.source_id,
        "p_owner": owner,
        "p_now": now,
        "p_next": next_poll_at,
        "p_interval": interval,
        "p_failed": failed,
        "p_error": outcome.error if failed else None,
        "p_success": None if failed else now,
        "p_validators": outcome.status == "ok",
        "p_etag": outcome.etag,
        "p_last_modified": outcome.last_modified,
        "p_body_hash": outcome.body_hash,
        "p_kind": None if failed else outcome.detected_kind,
    }


def _record_poll_statement() -> Update:
    """One UPDATE for every poll outcome: a failure keeps the validators,
    last success and kind (CASE / COALESCE on its parameters), a success
    resets the failure count. Core, not ORM: building an ORM-enabled update
    per poll was most of an unchanged feed's cost (docs/notes/crawl-profile.md),
    and no SourceRow is loaded in a save transaction for it to synchronise."""
    t: Table = SourceRow.__table__  # type: ignore[assignment]
    c = t.c

    def written_if(flag: str, name: str) -> Case[Any]:
        return case(
            (bindparam(flag, type_=Boolean), bindparam(name, type_=c[name[2:]].type)),
            else_=c[name[2:]],
        )

    # The lease fences the write: a poll whose source another owner has
    # claimed since (this one's lease ran out while it was saved) writes no
    # fetch state, which would clear that owner's lease mid-poll and let a
    # third claim it, and put an older poll's state over a newer one. A source
    # nobody holds is written (one fed from outside is never leased); a save
    # without an owner (p_owner NULL) is not fenced. coalesce gives the
    # parameter the column's type (a bare `$1 IS NULL` has none on PostgreSQL).
    owner = bindparam("p_owner", type_=c.lease_owner.type)
    return (
        update(t)
        .where(
            c.id == bindparam("p_id"),
            or_(c.lease_owner.is_(None), c.lease_owner == func.coalesce(owner, c.lease_owner)),
        )
        .values(
            last_polled_at=bindparam("p_now", type_=c.last_polled_at.type),
            next_poll_at=bindparam("p_next", type_=c.next_poll_at.type),
            lease_owner=None,
            lease_until=None,
            current_interval_seconds=bindparam("p_interval", type_=Integer),
            last_error=bindparam("p_error", type_=Text),
            consecutive_failures=case(
                (bindparam("p_failed", type_=Boolean), c.consecutive_failures + 1), else_=0
            ),
            last_success_at=func.coalesce(
                bindparam("p_success", type_=c.last_success_at.type), c.last_success_at
            ),
            etag=written_if("p_validators", "p_etag"),
            last_modified=written_if("p_validators", "p_last_modified"),
            body_hash=written_if("p_validators", "p_body_hash"),
            kind=func.coalesce(bindparam("p_kind", type_=c.kind.type), c.kind),
            # a success (ok or not modified) ends a first-poll baseline; a failure does not
            baseline_pending=case(
                (bindparam("p_failed", type_=Boolean), c.baseline_pending), else_=False
            ),
        )
    )


RECORD_POLL = _record_poll_statement()


def record_polls(session: Session, params: Sequence[Mapping[str, object]]) -> int:
    """Write several polls' fetch state in one executemany (one round trip
    on PostgreSQL's driver per batch, one cached statement everywhere); how
    many were written. A poll fenced off by another owner's lease (see
    RECORD_POLL) is not, and is logged."""
    if not params:
        return 0
    result = session.connection().execute(RECORD_POLL, [dict(p) for p in params])
    written = int(result.rowcount)
    if 0 <= written < len(params):
        # another owner claimed the source since, or it was removed meanwhile
        log.warning("poll_state status=skipped polls=%d reason=lease_lost", len(params) - written)
    return written


def record_poll(
    session: Session,
    outcome: PollOutcome,
    *,
    now: datetime,
    next_poll_at: datetime,
    interval: int | None = None,
    owner: str | None = None,
) -> None:
    """Write a poll's result into the source's fetch state (unless another
    owner than `owner` holds its lease: see RECORD_POLL).

    Failures keep the previous validators (ETag, Last-Modified, body hash) so
    a transient error does not force a full re-download afterwards.
    """
    params = poll_params(
        outcome, now=now, next_poll_at=next_poll_at, interval=interval, owner=owner
    )
    record_polls(session, [params])


@dataclass(frozen=True, slots=True)
class HostQuota:
    """How many sources of one host a claim may take: `per_host` minus the
    polls of that host already `busy` (in flight in this process). `host_of`
    maps a source URL to the key the HTTP client counts politeness under."""

    host_of: Callable[[str], str]
    per_host: int
    busy: Mapping[str, int] = field(default_factory=dict)
    # How many spider sources the claim may take (None: no bound). A spider
    # run waits for one of the process's spider slots while it holds a poll
    # slot and a lease; claiming more than the free spider slots would fill
    # the poll slots with waiting spiders and starve every feed.
    spiders: int | None = None


def pick_per_host(
    candidates: Iterable[tuple[int, str, str | None]], quota: HostQuota, limit: int
) -> list[int]:
    """Ids of the first `limit` candidates (id, url, kind), in order, that keep
    every host within its quota and the spiders within theirs. Pure: the
    whole host-spreading decision.

    Why: a host serves `per_host` requests at once and one per delay; a
    claim of more of its sources than that only queues them in the client
    while they hold leases and poll slots that other hosts' sources need.
    The same holds for spider runs and the process's spider slots.
    """
    taken: Counter[str] = Counter(quota.busy)
    spiders = quota.spiders
    ids: list[int] = []
    for source_id, url, kind in candidates:
        if len(ids) >= limit:
            break
        if kind == "spider" and spiders is not None:
            if spiders <= 0:
                continue
            spiders -= 1
            ids.append(source_id)  # a spider's requests are paced by Scrapy, not by host slots
            continue
        host = quota.host_of(url)
        if taken[host] < quota.per_host:
            taken[host] += 1
            ids.append(source_id)
    return ids


def claim_due_sources(
    session: Session,
    *,
    now: datetime,
    owner: str,
    lease: timedelta,
    limit: int,
    names: Sequence[str] | None = None,
    due_only: bool = True,
    hosts: HostQuota | None = None,
    free_dead: bool = True,
) -> list[Source]:
    """Take a lease on sources to poll, so no two processes poll one at once.

    On Postgres the rows are locked with FOR UPDATE SKIP LOCKED, so replicas
    racing for work never block each other; on SQLite the write lock of the
    transaction serialises claimers. A lease that expires (its holder died)
    makes the source claimable again, and so does one whose holder is provably
    dead (`free_dead_leases`), at once. With `hosts`, no host gets more than
    its quota (see pick_per_host): the due sources are read first (id and
    URL only, unlocked, streamed: reading stops at the `limit`-th pick, so a
    backlog of thousands of due sources does not make every small claim
    fetch thousands of rows), picked, then locked and re-checked.
    `free_dead=False` skips `free_dead_leases` (three queries, one over every
    leased row): the daemon's first claim of each tick frees dead leases, the
    refills within the tick (one claim per poll that ends) skip it.
    """
    if free_dead:
        free_dead_leases(session, now=now, lease=lease)
    claimable = [
        SourceRow.enabled.is_(True),
        or_(SourceRow.lease_until.is_(None), SourceRow.lease_until < now),
        # a spider source without a spider is fed from outside (newswatch.scrapy)
        or_(SourceRow.kind.is_(None), SourceRow.kind != "spider", SourceRow.spider.is_not(None)),
    ]
    if due_only:
        claimable.append(or_(SourceRow.next_poll_at.is_(None), SourceRow.next_poll_at <= now))
    if names:
        claimable.append(SourceRow.name.in_([normalize_name(n) for n in names]))
    order = (SourceRow.next_poll_at, SourceRow.id)
    stmt = select(SourceRow).where(*claimable).order_by(*order)
    if hosts is None:
        stmt = stmt.limit(limit)
    else:
        scan = select(SourceRow.id, SourceRow.url, SourceRow.kind).where(*claimable)
        result = session.execute(
            scan.order_by(*order)
            .limit(HOST_SCAN_LIMIT)
            .execution_options(yield_per=max(64, 4 * limit))
        )
        try:
            # Twice the limit: another replica's claim may hold some of them
            # locked (skipped below); a short claim would end the tick.
            extra = limit + CLAIM_SPARE
            picked = pick_per_host(
                ((sid, url, kind) for sid, url, kind in result), hosts, limit + extra
            )
        finally:
            result.close()
        stmt = stmt.where(SourceRow.id.in_(picked)).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    claimed = list(session.scalars(stmt))
    for row in claimed:
        row.lease_owner = owner
        row.lease_until = now + lease
    session.flush()
    return [to_record(r) for r in claimed]


def defer_poll(session: Session, source_id: int, owner: str, *, next_poll_at: datetime) -> None:
    """Hand back our lease on a source that was not tried (no request slot in
    time) and set its next poll. Nothing else changes: not the interval, not
    the failure count, not the last poll time, since no poll happened."""
    session.execute(
        update(SourceRow)
        .where(SourceRow.id == source_id, SourceRow.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, next_poll_at=next_poll_at)
    )


def free_dead_leases(session: Session, *, now: datetime, lease: timedelta) -> int:
    """Clear the unexpired source leases of provably dead owners; return how many."""
    held = session.execute(
        select(SourceRow.lease_owner, func.max(SourceRow.lease_until))
        .where(SourceRow.lease_owner.is_not(None), SourceRow.lease_until >= now)
        .group_by(SourceRow.lease_owner)
    ).all()
    if not held:
        return 0
    # A lease's claim time is estimated with this claimer's lease length (set by
    # NEWSWATCH_FETCH_TIMEOUT). A replica with a longer one may see a lease taken
    # before a Postgres restart taken back early: that repeats a poll, which
    # stores nothing twice (items, matches and alerts have unique keys).
    check = liveness(session.connection())
    dead = dead_tokens(check, [(str(o), u - lease if u else None) for o, u in held])
    if not dead:
        return 0
    result = session.execute(
        update(SourceRow)
        .where(SourceRow.lease_owner.in_(sorted(dead)))
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    n = int(result.rowcount)  # type: ignore[attr-defined]
    log.info("leases_reclaimed status=ok table=sources count=%d owners=%d", n, len(dead))
    return n


def held_sources(
    session: Session, *, now: datetime, owner: str, names: Sequence[str] | None = None
) -> HeldSources:
    """Enabled sources leased to another owner whose lease has not expired."""
    stmt = select(func.count(), func.max(SourceRow.lease_until)).where(
        SourceRow.enabled.is_(True),
        SourceRow.lease_owner.is_not(None),
        SourceRow.lease_owner != owner,
        SourceRow.lease_until >= now,
    )
    if names:
        stmt = stmt.where(SourceRow.name.in_(list(names)))
    count, until = session.execute(stmt).one()
    return HeldSources(int(count or 0), until)


def release_lease(session: Session, source_id: int, owner: str) -> None:
    session.execute(
        update(SourceRow)
        .where(SourceRow.id == source_id, SourceRow.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def renew_lease(session: Session, source_id: int, owner: str, *, until: datetime) -> bool:
    """Move our lease's end to `until`; False if another owner holds the source.

    On Postgres the UPDATE waits for a claimer's row lock and re-reads the
    row, so a lease taken over meanwhile is seen; on SQLite the write lock
    serialises it with claims."""
    result = session.execute(
        update(SourceRow)
        .where(SourceRow.id == source_id, SourceRow.lease_owner == owner)
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def seen_links(session: Session, source_id: int) -> frozenset[str]:
    return frozenset(
        session.scalars(select(PageLinkRow.url).where(PageLinkRow.source_id == source_id))
    )


def add_seen_links(session: Session, source_id: int, links: Sequence[str], now: datetime) -> None:
    from storage.items import insert_ignore

    if links:
        rows = [{"source_id": source_id, "url": u, "first_seen": now} for u in dict.fromkeys(links)]
        session.execute(insert_ignore(session, PageLinkRow, ["source_id", "url"]), rows)


def seen_versions(session: Session, source_id: int) -> dict[str, datetime | None]:
    """A sitemap source's memory: every article or child-sitemap URL it has
    fetched, with the lastmod it had then (crawler.sitemaps decides "wanted")."""
    rows = session.execute(
        select(PageLinkRow.url, PageLinkRow.version).where(PageLinkRow.source_id == source_id)
    )
    return {url: version for url, version in rows}


def add_seen_versions(
    session: Session, source_id: int, pairs: Sequence[SeenVersion], now: datetime
) -> None:
    """Remember (url, version) pairs; a URL seen again takes its newer version."""
    if not pairs:
        return
    latest = dict(pairs)  # the last pair of a URL wins, as in the memory store
    rows = [
        {"source_id": source_id, "url": u, "first_seen": now, "version": v}
        for u, v in latest.items()
    ]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(PageLinkRow)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source_id", "url"], set_={"version": stmt.excluded.version}
    )
    session.execute(stmt, rows)


def prune_seen_versions(session: Session, *, before: datetime) -> int:
    """Forget sitemap URLs last seen with a version before `before`.

    Safe once `before` is older than the sitemap window: such a URL, listed
    again with the same version, is too old to be wanted anyway, and with a
    newer one it is wanted whether remembered or not. Undated URLs (and a
    page source's links, whose version is NULL) are kept: forgetting them
    would fetch them again."""
    result = session.execute(
        delete(PageLinkRow)
        .where(PageLinkRow.version.is_not(None), PageLinkRow.version < before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def update_source(
    session: Session,
    name: str,
    *,
    url: str,
    kind: str | None,
    every_seconds: int,
    links_css: str | None,
    spider: str | None = None,
) -> bool:
    """Update the settings of the source named `name`; False if there is none.
    A spider source's spec follows the file (None: fed from outside)."""
    name = normalize_name(name)
    row = session.scalar(select(SourceRow).where(SourceRow.name == name))
    if row is None:
        return False
    if row.url != url:
        row.etag = row.last_modified = row.body_hash = None
    row.url, row.every_seconds, row.links_css = url, every_seconds, links_css
    if kind is not None:
        row.kind = kind
    if row.kind == "spider":
        row.spider = spider
    return True
