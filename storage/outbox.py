"""Outbox queries: claim due alerts under a lease, record what became of them.

Invariants:
- a row is delivered only by the holder of its unexpired lease. Claiming locks
  candidate rows with FOR UPDATE SKIP LOCKED on Postgres (replicas never block
  or double-claim); on SQLite the transaction's write lock serialises claimers.
  The lease is set with a guarded UPDATE (`lease free`), so even without row
  locks two claimers cannot both take a row.
- every state change after a send is guarded by `lease_owner = owner`, so a
  deliverer whose lease expired cannot overwrite what the new holder did.
- rows are never deleted: pending -> sent, pending -> failed, failed -> pending;
  pending or failed -> cancelled when the recipient or its watchlist is
  removed (storage.cancellations; every claim sweeps what is left).
- the rows of one digest (address, period; across watchlists) are claimed
  together or not at all.
- immediate rows to one address about one item (or one folded story) are
  claimed together or not at all, across watchlists, and go as one message;
  once that message was sent, a later such row is marked sent without a
  second one (storage.alert_groups).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from alerts.alert_records import StoredMatch
from storage.alert_groups import GroupRow, plan
from storage.cancellations import cancel_orphans, hold_claim_lock
from storage.leases import dead_tokens, liveness
from storage.matches import stored_match
from storage.tables import ItemRow, MatchRow, OutboxRow, RecipientRow, SourceRow, WatchlistRow

STATUSES = ("pending", "sent", "failed", "cancelled")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecipientRef:
    id: int
    watchlist_id: int
    channel: str  # email | slack | webhook
    target: str  # possibly "${NAME}"
    secret: str | None


@dataclass(frozen=True, slots=True)
class ClaimedAlert:
    id: int
    attempts: int
    match: StoredMatch
    highlights: tuple[str, ...]  # the spellings found, for highlighting


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    """What one send delivers: one alert, the alerts of several watchlists to
    one address about one item or folded story (oldest first; `recipient`,
    `watchlist_id` and `watchlist` are the first one's), or every alert of
    one digest."""

    recipient: RecipientRef
    watchlist_id: int
    watchlist: str
    digest_period: str | None
    alerts: tuple[ClaimedAlert, ...]

    @property
    def ids(self) -> list[int]:
        return [a.id for a in self.alerts]

    @property
    def attempts(self) -> int:
        return max(a.attempts for a in self.alerts)

    @property
    def watchlists(self) -> list[str]:
        """Every watchlist the message names, in order, once each."""
        return list(dict.fromkeys(a.match.watchlist for a in self.alerts))


@dataclass(frozen=True, slots=True)
class AlertListing:
    id: int
    status: str
    watchlist: str
    channel: str
    target: str
    item_title: str
    item_url: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    digest_period: str | None
    folded_into: int | None = None  # sent in the message of that alert (alert_groups)


@dataclass(frozen=True, slots=True)
class PendingSummary:
    """What a one-shot run leaves behind: pending alerts it may send later, and
    those another live process holds (skipped by this run)."""

    pending: int  # pending and not held by another process
    next_due: datetime | None  # the earliest of them
    held: int
    held_until: datetime | None  # the latest lease expiry among the held ones


@dataclass(frozen=True, slots=True)
class BacklogCounts:
    pending: int
    due: int  # pending and due now
    sent: int
    failed: int
    cancelled: int = 0


def _lease_free(now: datetime) -> Any:
    return or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now)


def _due(now: datetime, exclude: Collection[int]) -> list[Any]:
    cond = [OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now]
    if exclude:
        cond.append(OutboxRow.recipient_id.not_in(list(exclude)))
    return cond


def _waits_behind(now: datetime) -> Any:
    """True for a single alert that has an earlier single alert to the same
    recipient still pending and not takeable now (backing off, or leased by
    another deliverer). Such an alert waits, so that each recipient gets its
    alerts in the order of their match time, even across retries and replicas."""
    earlier = aliased(OutboxRow)
    return exists().where(
        earlier.recipient_id == OutboxRow.recipient_id,
        earlier.status == "pending",
        earlier.digest_period.is_(None),
        or_(
            earlier.created_at < OutboxRow.created_at,
            and_(earlier.created_at == OutboxRow.created_at, earlier.id < OutboxRow.id),
        ),
        or_(earlier.next_attempt_at > now, earlier.lease_until >= now),
    )


def _waits_for_its_group(now: datetime) -> Any:
    """True for a single alert whose group (same address and item, another
    watchlist) has a pending member not takeable now: it would be given back
    (storage.alert_groups), so it is not picked and takes no claim slot."""
    other = aliased(OutboxRow)
    return and_(
        OutboxRow.address_key.is_not(None),
        exists().where(
            other.address_key == OutboxRow.address_key,
            other.item_id == OutboxRow.item_id,
            other.id != OutboxRow.id,
            other.status == "pending",
            other.digest_period.is_(None),
            or_(other.next_attempt_at > now, other.lease_until >= now),
        ),
    )


def _locked(session: Session, stmt: Select[Any]) -> Select[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True, of=OutboxRow)
    return stmt


def pending_recipients(session: Session) -> list[RecipientRef]:
    """Recipients that have pending alerts (to check their configuration once)."""
    owed = select(OutboxRow.recipient_id).where(OutboxRow.status == "pending")
    rows = session.scalars(select(RecipientRow).where(RecipientRow.id.in_(owed)))
    return [RecipientRef(r.id, r.watchlist_id, r.channel, r.target, r.secret) for r in rows]


def note_waiting(session: Session, recipient_ids: Collection[int], error: str) -> int:
    """Record why pending rows cannot be sent yet (missing configuration), without
    counting an attempt or delaying them: they go as soon as the configuration is
    there. Writes only rows whose note changes; returns how many rows wait."""
    if not recipient_ids:
        return 0
    mine = [OutboxRow.status == "pending", OutboxRow.recipient_id.in_(list(recipient_ids))]
    session.execute(
        update(OutboxRow)
        .where(*mine, or_(OutboxRow.last_error.is_(None), OutboxRow.last_error != error))
        .values(last_error=error)
    )
    return int(session.scalar(select(func.count()).select_from(OutboxRow).where(*mine)) or 0)


def claim_due(
    session: Session,
    *,
    now: datetime,
    owner: str,
    lease: timedelta,
    limit: int,
    exclude_recipients: Collection[int] = (),
) -> list[ClaimedBatch]:
    """Lease due alerts to `owner` (unique per claim), oldest match first.

    Up to `limit` single alerts, plus up to `limit // 10 + 1` whole digests.
    On SQLite the first statement is an UPDATE whose subquery picks the rows, so
    the write lock is taken before reading; on Postgres the rows are picked with
    FOR UPDATE SKIP LOCKED, so replicas skip each other's rows.
    A digest of which another deliverer holds part is left alone this time.
    Rows no longer owed (recipient or watchlist removed) are cancelled first,
    and again among the rows taken (storage.cancellations).
    """
    # PostgreSQL: claims run one at a time across replicas (until this
    # transaction ends): otherwise a claim could read "no earlier alert of
    # this recipient is leased" while another replica's claim of that earlier
    # alert is still uncommitted, and both would send, out of order. A
    # watchlist import or removal takes the same lock (storage.cancellations).
    hold_claim_lock(session)
    # On SQLite this UPDATE also takes the write lock before anything is read.
    _log_cancelled(cancel_orphans(session))
    free_dead_leases(session, now=now, lease=lease)
    due = [*_due(now, exclude_recipients), _lease_free(now)]
    singles = select(OutboxRow.id).where(
        *due, OutboxRow.digest_period.is_(None), ~_waits_behind(now), ~_waits_for_its_group(now)
    )
    singles = singles.order_by(OutboxRow.created_at, OutboxRow.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # Lock first, then update: inside `IN (…)` Postgres may re-run a LIMIT … SKIP
        # LOCKED subquery per row, taking far more than `limit` rows.
        picked = list(session.scalars(_locked(session, singles)))
        _take(session, OutboxRow.id.in_(picked), now, owner, lease)
    else:
        _take(session, OutboxRow.id.in_(singles), now, owner, lease)
    leaders = _group_singles(session, now, owner, lease)
    _claim_digests(session, now, owner, lease, exclude_recipients, limit // 10 + 1)
    if session.get_bind().dialect.name == "postgresql":
        # A crawl that loaded its watchlists before an import may commit a row
        # for a removed recipient after the sweep above and before a take:
        # never hand such a row to the deliverer. (The set of removed
        # recipients cannot change meanwhile: imports take the claim's lock.
        # On SQLite no crawl commits during the claim: the write lock.)
        _log_cancelled(cancel_orphans(session, owner=owner))
    ids = list(
        session.scalars(
            select(OutboxRow.id).where(
                OutboxRow.lease_owner == owner, OutboxRow.status == "pending"
            )
        )
    )
    return _load_batches(session, ids, leaders) if ids else []


def _log_cancelled(n: int) -> None:
    if n:
        log.info("alerts_cancelled status=cancelled count=%d reason=removed", n)


_GROUP_COLUMNS = (
    OutboxRow.id,
    OutboxRow.address_key,
    OutboxRow.item_id,
    OutboxRow.story_id,
    OutboxRow.status,
    OutboxRow.lease_owner,
    OutboxRow.lease_until,
    OutboxRow.next_attempt_at,
    OutboxRow.created_at,
    OutboxRow.folded_into,
)


def _group_row(r: Any) -> GroupRow:
    return GroupRow(*r)


def _group_singles(session: Session, now: datetime, owner: str, lease: timedelta) -> dict[int, int]:
    """Complete the groups of the single alerts just taken (storage.alert_groups):
    fold what was sent already, give back what must wait, take the rest of each
    group. Returns row id -> the first row of its message."""
    held = session.execute(
        select(*_GROUP_COLUMNS).where(
            OutboxRow.lease_owner == owner,
            OutboxRow.status == "pending",
            OutboxRow.digest_period.is_(None),
            OutboxRow.address_key.is_not(None),
        )
    ).all()
    rows = {r.id: _group_row(r) for r in held}
    for _ in range(8):  # a group rarely spans more than two hops
        items = {(r.address_key, r.item_id) for r in rows.values()}
        stories = {(r.address_key, r.story_id) for r in rows.values() if r.story_id is not None}
        keys = {k for k, _ in items}
        cond = [OutboxRow.item_id.in_(sorted({i for _, i in items}))]
        if stories:
            cond.append(OutboxRow.story_id.in_(sorted({s for _, s in stories})))
        found = session.execute(
            select(*_GROUP_COLUMNS).where(
                OutboxRow.address_key.in_(sorted(keys)),
                OutboxRow.digest_period.is_(None),
                OutboxRow.status.in_(("pending", "sent")),
                or_(*cond),
            )
        ).all()
        new = [
            _group_row(r)
            for r in found
            if r.id not in rows
            and ((r.address_key, r.item_id) in items or (r.address_key, r.story_id) in stories)
        ]
        if not new:
            break
        rows.update((r.id, r) for r in new)
    if not rows:
        return {}
    decided = plan(list(rows.values()), owner=owner, now=now)
    for into in set(decided.fold.values()):
        fold = [i for i, to in decided.fold.items() if to == into]
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(fold), OutboxRow.status == "pending")
            .values(
                status="sent",
                sent_at=now,
                folded_into=into,
                last_error=None,
                lease_owner=None,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        log.info("alert_folded status=sent ids=%s into=%d", fold, into)
    if decided.release:
        _finish(session, decided.release, owner)
    if decided.take:
        _take(session, OutboxRow.id.in_(decided.take), now, owner, lease)
    return decided.leader


def free_dead_leases(session: Session, *, now: datetime, lease: timedelta) -> int:
    """Clear the unexpired claims of provably dead deliverers (storage.leases);
    return how many rows. Their alerts are then due again: one whose send had
    completed and whose mark had not is repeated, as after an expired lease."""
    held = session.execute(
        select(OutboxRow.lease_owner, func.max(OutboxRow.lease_until))
        .where(
            OutboxRow.status == "pending",
            OutboxRow.lease_owner.is_not(None),
            OutboxRow.lease_until >= now,
        )
        .group_by(OutboxRow.lease_owner)
    ).all()
    if not held:
        return 0
    check = liveness(session.connection())
    dead = dead_tokens(check, [(str(o), u - lease if u else None) for o, u in held])
    if not dead:
        return 0
    result = session.execute(
        update(OutboxRow)
        .where(OutboxRow.status == "pending", OutboxRow.lease_owner.in_(sorted(dead)))
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    n = int(result.rowcount)  # type: ignore[attr-defined]
    log.info("leases_reclaimed status=ok table=outbox count=%d claims=%d", n, len(dead))
    return n


def _take(session: Session, where: Any, now: datetime, owner: str, lease: timedelta) -> int:
    result = session.execute(
        update(OutboxRow)
        .where(where, OutboxRow.status == "pending", _lease_free(now))
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _claim_digests(
    session: Session,
    now: datetime,
    owner: str,
    lease: timedelta,
    exclude: Collection[int],
    groups: int,
) -> None:
    """Take up to `groups` whole digests: one per (address, period) across
    watchlists (rows without an address key: per (watchlist, recipient,
    period), as before 0009), oldest first, each whole or not at all."""
    due = [*_due(now, exclude), OutboxRow.digest_period.is_not(None)]
    first = func.min(OutboxRow.created_at)
    by_address = (
        select(OutboxRow.address_key, OutboxRow.digest_period, first)
        .where(*due, _lease_free(now), OutboxRow.address_key.is_not(None))
        .group_by(OutboxRow.address_key, OutboxRow.digest_period)
        .order_by(first)
        .limit(groups)
    )
    by_recipient = (
        select(OutboxRow.watchlist_id, OutboxRow.recipient_id, OutboxRow.digest_period, first)
        .where(*due, _lease_free(now), OutboxRow.address_key.is_(None))
        .group_by(OutboxRow.watchlist_id, OutboxRow.recipient_id, OutboxRow.digest_period)
        .order_by(first)
        .limit(groups)
    )
    found: list[tuple[datetime, list[Any]]] = [
        (at, [OutboxRow.address_key == addr, OutboxRow.digest_period == period])
        for addr, period, at in session.execute(by_address).all()
    ]
    found += [
        (
            at,
            [
                OutboxRow.address_key.is_(None),
                OutboxRow.watchlist_id == wl,
                OutboxRow.recipient_id == rcpt,
                OutboxRow.digest_period == period,
            ],
        )
        for wl, rcpt, period, at in session.execute(by_recipient).all()
    ]
    found.sort(key=lambda f: f[0])
    for _, same in found[:groups]:
        free = select(OutboxRow.id).where(*due, *same, _lease_free(now))
        mine = list(session.scalars(_locked(session, free)))
        total = session.scalar(select(func.count()).select_from(OutboxRow).where(*due, *same))
        if mine and len(mine) == total:
            _take(session, OutboxRow.id.in_(mine), now, owner, lease)


def _load_batches(
    session: Session, ids: Sequence[int], leaders: dict[int, int] | None = None
) -> list[ClaimedBatch]:
    stmt = (
        select(OutboxRow, MatchRow, ItemRow, SourceRow.name, WatchlistRow.name, RecipientRow)
        .join(MatchRow, MatchRow.id == OutboxRow.match_id)
        .join(ItemRow, ItemRow.id == OutboxRow.item_id)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .join(WatchlistRow, WatchlistRow.id == OutboxRow.watchlist_id)
        .join(RecipientRow, RecipientRow.id == OutboxRow.recipient_id)
        .where(OutboxRow.id.in_(list(ids)))
        .order_by(OutboxRow.created_at, OutboxRow.id)
    )
    batches: dict[tuple[Any, ...], ClaimedBatch] = {}
    for o, m, item, source, wl_name, r in session.execute(stmt):
        alert = ClaimedAlert(
            o.id, o.attempts, stored_match(m, item, source, wl_name), _highlights(m.hits)
        )
        key: tuple[Any, ...] = ((leaders or {}).get(o.id, o.id),)
        if o.digest_period is not None:  # one digest per address and period
            key = (
                ("address", o.address_key, o.digest_period)
                if o.address_key is not None
                else ("recipient", o.watchlist_id, r.id, o.digest_period)
            )
        batch = batches.get(key)
        if batch is None:
            ref = RecipientRef(r.id, r.watchlist_id, r.channel, r.target, r.secret)
            batches[key] = ClaimedBatch(ref, o.watchlist_id, wl_name, o.digest_period, (alert,))
        else:
            batches[key] = ClaimedBatch(
                batch.recipient,
                batch.watchlist_id,
                batch.watchlist,
                batch.digest_period,
                (*batch.alerts, alert),
            )
    return list(batches.values())


def _highlights(hits: list[Any] | None) -> tuple[str, ...]:
    spellings = (h.get("spelling") for h in hits or () if isinstance(h, dict))
    return tuple(dict.fromkeys(s for s in spellings if isinstance(s, str) and s))


def _finish(session: Session, ids: Sequence[int], owner: str, **values: Any) -> int:
    """Apply an outcome to rows this owner still holds; return how many it held."""
    if not ids:
        return 0
    result = session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.id.in_(list(ids)),
            OutboxRow.lease_owner == owner,
            OutboxRow.status == "pending",
        )
        .values(lease_owner=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def mark_sent(session: Session, ids: Sequence[int], *, owner: str, now: datetime) -> int:
    """Call only after the channel accepted the alert."""
    return _finish(
        session,
        ids,
        owner,
        status="sent",
        sent_at=now,
        last_error=None,
        attempts=OutboxRow.attempts + 1,
    )


def schedule_retry(
    session: Session, ids: Sequence[int], *, owner: str, error: str, next_attempt_at: datetime
) -> int:
    return _finish(
        session,
        ids,
        owner,
        attempts=OutboxRow.attempts + 1,
        next_attempt_at=next_attempt_at,
        last_error=error,
    )


def mark_failed(session: Session, ids: Sequence[int], *, owner: str, error: str) -> int:
    return _finish(
        session, ids, owner, status="failed", attempts=OutboxRow.attempts + 1, last_error=error
    )


def release(session: Session, ids: Sequence[int], *, owner: str) -> int:
    """Give claimed rows back untouched (not tried this pass)."""
    return _finish(session, ids, owner)


def postpone(
    session: Session, ids: Sequence[int], *, owner: str, note: str, next_attempt_at: datetime
) -> int:
    """The peer asked us to wait (Retry-After): due again then, no attempt counted."""
    return _finish(session, ids, owner, next_attempt_at=next_attempt_at, last_error=note)


def next_due_after(
    session: Session, *, now: datetime, exclude_recipients: Collection[int] = ()
) -> datetime | None:
    """The earliest time after `now` at which a pending alert, not held by a
    deliverer, falls due (a backoff, a Retry-After, a digest period's end)."""
    cond = [
        OutboxRow.status == "pending",
        OutboxRow.next_attempt_at > now,
        _lease_free(now),
    ]
    if exclude_recipients:
        cond.append(OutboxRow.recipient_id.not_in(list(exclude_recipients)))
    return session.scalar(select(func.min(OutboxRow.next_attempt_at)).where(*cond))


def pending_summary(session: Session, *, now: datetime, owner_prefix: str) -> PendingSummary:
    """Pending alerts after a run, split into those another process holds
    (leases not this process's: tokens not starting with `owner_prefix`) and
    the rest."""
    pending = OutboxRow.status == "pending"
    held_cond = and_(
        OutboxRow.lease_until >= now,
        OutboxRow.lease_owner.is_not(None),
        ~OutboxRow.lease_owner.startswith(owner_prefix, autoescape=True),
    )
    held, until = session.execute(
        select(func.count(), func.max(OutboxRow.lease_until)).where(pending, held_cond)
    ).one()
    rest, first = session.execute(
        select(func.count(), func.min(OutboxRow.next_attempt_at)).where(pending, ~held_cond)
    ).one()
    return PendingSummary(int(rest or 0), first, int(held or 0), until)


def list_alerts(
    session: Session, *, status: str | None = None, limit: int | None = None
) -> list[AlertListing]:
    """Alerts newest first, joined with their watchlist, recipient and item
    (plain columns: ORM rows cost the web view's 400 alerts ~5 ms of CPU)."""
    stmt = (
        select(
            OutboxRow.id,
            OutboxRow.status,
            OutboxRow.attempts,
            OutboxRow.next_attempt_at,
            OutboxRow.last_error,
            OutboxRow.sent_at,
            OutboxRow.created_at,
            OutboxRow.digest_period,
            OutboxRow.folded_into,
            WatchlistRow.name,
            RecipientRow.channel,
            RecipientRow.target,
            ItemRow.title,
            ItemRow.url,
        )
        .join(WatchlistRow, WatchlistRow.id == OutboxRow.watchlist_id)
        .join(RecipientRow, RecipientRow.id == OutboxRow.recipient_id)
        .join(ItemRow, ItemRow.id == OutboxRow.item_id)
        .order_by(OutboxRow.created_at.desc(), OutboxRow.id.desc())
    )
    if status is not None:
        stmt = stmt.where(OutboxRow.status == status)
    if limit is not None:
        # The newest `limit` rows first, then the joins: Postgres otherwise
        # joins every row of the status before keeping the newest.
        newest = select(OutboxRow.id).order_by(OutboxRow.created_at.desc(), OutboxRow.id.desc())
        if status is not None:
            newest = newest.where(OutboxRow.status == status)
        stmt = stmt.where(OutboxRow.id.in_(newest.limit(limit).scalar_subquery()))
    return [
        AlertListing(
            id=o.id,
            status=o.status,
            watchlist=o.name,
            channel=o.channel,
            target=o.target,
            item_title=o.title,
            item_url=o.url,
            attempts=o.attempts,
            next_attempt_at=o.next_attempt_at,
            last_error=o.last_error,
            sent_at=o.sent_at,
            created_at=o.created_at,
            digest_period=o.digest_period,
            folded_into=o.folded_into,
        )
        for o in session.execute(stmt)
    ]


def retry_failed(session: Session, *, now: datetime) -> int:
    """Failed rows back to pending, due now, with a fresh series of attempts.
    `last_error` is kept until the next attempt replaces or clears it.
    Rows no longer owed (recipient or watchlist removed) are cancelled instead."""
    hold_claim_lock(session)
    _log_cancelled(cancel_orphans(session))
    result = session.execute(
        update(OutboxRow)
        .where(OutboxRow.status == "failed")
        .values(
            status="pending", attempts=0, next_attempt_at=now, lease_owner=None, lease_until=None
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def backlog(session: Session, *, now: datetime) -> BacklogCounts:
    """Counts by status, and how many pending alerts are due (for /metrics)."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in session.execute(
        select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
    ):
        counts[status] = int(n)
    due = session.scalar(select(func.count()).select_from(OutboxRow).where(*_due(now, ())))
    return BacklogCounts(
        counts["pending"], int(due or 0), counts["sent"], counts["failed"], counts["cancelled"]
    )
