"""Cancelling alerts that are no longer owed: their recipient was removed from
the watchlist (`watchlist import` of a file without it), or the watchlist
was removed (`watchlist remove`).

An undelivered row (`pending`, leased or not, backing off or due, and
`failed`, which `alerts retry` would revive) of such a recipient becomes
`cancelled`, with the reason in `last_error`; `sent` rows stay as they are
(history). Rows of every other recipient row are untouched, including a
recipient row of another watchlist with the same address: the outbox groups
one message per address across watchlists (storage.alert_groups) only among
`pending` and `sent` rows, so the remaining watchlist's alert is sent alone.

Two callers:
- the watchlist's reconciliation (storage.watchlists), in the import's (or
  removal's) transaction. On PostgreSQL it first takes the claim's advisory
  lock (`CLAIM_LOCK`), so no claim runs between the reconciliation and the
  commit: a claim either committed before (its rows
  are then in flight, and cancelled here too; the message may already be on
  its way) or starts after and sees them cancelled. On SQLite the write lock
  orders the two the same way.
- every claim (storage.outbox.claim_due), for the rows a crawl recorded with
  a watchlist it had loaded before the import committed, and for rows left
  by older versions: `cancel_orphans` cancels the undelivered rows of every
  inactive recipient and of every removed watchlist's recipients.

A cancelled row stays cancelled when its recipient is added back (its
(item, watchlist, recipient) key is taken, so the alert is not owed again),
as a sent row does.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, case, or_, select, text, update
from sqlalchemy.orm import Session

from storage.tables import OutboxRow, RecipientRow, WatchlistRow

CANCELLED = "cancelled"
UNDELIVERED = ("pending", "failed")
RECIPIENT_REMOVED = "recipient removed from the watchlist"
WATCHLIST_REMOVED = "watchlist removed"

# "newsoutb": the advisory lock that orders outbox claims (storage.outbox uses
# this one; it is here so that storage.watchlists need not import the outbox).
CLAIM_LOCK = 0x6E657773_6F757462


def hold_claim_lock(session: Session) -> None:
    """PostgreSQL: wait for the claim running now, and keep claims out until
    this transaction ends. SQLite: nothing (its write lock does it)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})


def _cancel(session: Session, where: list[Any], reason: Any) -> int:
    result = session.execute(
        update(OutboxRow)
        .where(*where)
        .values(status=CANCELLED, last_error=reason, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def cancel_alerts(session: Session, recipient_ids: Collection[int], *, reason: str) -> int:
    """Cancel the undelivered rows of these recipients (the reconciliation's
    call, under `hold_claim_lock`). Returns how many."""
    if not recipient_ids:
        return 0
    where = [OutboxRow.recipient_id.in_(sorted(recipient_ids)), OutboxRow.status.in_(UNDELIVERED)]
    if session.get_bind().dialect.name == "postgresql":
        # Rows in flight are leased and may be marked meanwhile: lock in id
        # order, as `mark_sent` & co. do (their `id IN (…)` walks the primary
        # key), so that the two cannot deadlock.
        session.execute(select(OutboxRow.id).where(*where).order_by(OutboxRow.id).with_for_update())
    return _cancel(session, where, reason)


def _gone() -> Select[Any]:
    """Recipient rows no longer owed anything: inactive, or of a removed watchlist."""
    return (
        select(RecipientRow.id)
        .join(WatchlistRow, WatchlistRow.id == RecipientRow.watchlist_id)
        .where(or_(RecipientRow.active.is_(False), WatchlistRow.removed_at.is_not(None)))
    )


def cancel_orphans(session: Session, *, owner: str | None = None) -> int:
    """Cancel every undelivered row that is no longer owed (see the module
    docstring) in one UPDATE; with `owner`, only rows leased to it. On
    SQLite, as a claim's first statement, it takes the write lock before
    anything is read. Returns how many rows."""
    where: list[Any] = [OutboxRow.recipient_id.in_(_gone()), OutboxRow.status.in_(UNDELIVERED)]
    if owner is not None:
        where.append(OutboxRow.lease_owner == owner)
    of_removed = (
        select(RecipientRow.id)
        .join(WatchlistRow, WatchlistRow.id == RecipientRow.watchlist_id)
        .where(WatchlistRow.removed_at.is_not(None))
    )
    reason = case(
        (OutboxRow.recipient_id.in_(of_removed), WATCHLIST_REMOVED), else_=RECIPIENT_REMOVED
    )
    return _cancel(session, where, reason)
