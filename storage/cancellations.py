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
  lock (`CLAIM_LOCK`), so no claim runs between the
  reconciliation and the commit: a claim either committed before (its rows
  are then in flight, and cancelled here too; the message may already be on
  its way) or starts after and sees them cancelled. On SQLite the write lock
  orders the two the same way.
- every claim (storage.outbox.claim_due), for the rows a crawl recorded with
  a watchlist it had loaded before the import committed, and for rows left
  by older versions: `orphans` cancels the undelivered rows of every inactive
  recipient and of every removed watchlist's recipients.

A cancelled row stays cancelled when its recipient is added back (its
(item, watchlist, recipient) key is taken, so the alert is not owed again),
as a sent row does.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, select, text, update
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


def cancel_alerts(
    session: Session,
    recipients: Collection[int] | Select[Any],
    *,
    reason: str,
    owner: str | None = None,
) -> int:
    """Cancel the undelivered rows of `recipients` (ids, or a select of
    ids); with `owner`, only those leased to it. Returns how many."""
    ids = recipients if isinstance(recipients, Select) else sorted(recipients)
    if not isinstance(ids, Select) and not ids:
        return 0
    where: list[Any] = [OutboxRow.recipient_id.in_(ids), OutboxRow.status.in_(UNDELIVERED)]
    if owner is not None:
        where.append(OutboxRow.lease_owner == owner)
    elif session.get_bind().dialect.name == "postgresql":
        # Lock in id order, as `mark_sent` & co. do (their `id IN (…)` walks
        # the primary key): two writers of the same rows then cannot deadlock.
        session.execute(select(OutboxRow.id).where(*where).order_by(OutboxRow.id).with_for_update())
    result = session.execute(
        update(OutboxRow)
        .where(*where)
        .values(status=CANCELLED, last_error=reason, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def removed_watchlists_recipients() -> Select[Any]:
    return (
        select(RecipientRow.id)
        .join(WatchlistRow, WatchlistRow.id == RecipientRow.watchlist_id)
        .where(WatchlistRow.removed_at.is_not(None))
    )


def removed_recipients() -> Select[Any]:
    """Inactive recipient rows of watchlists that are not removed."""
    return (
        select(RecipientRow.id)
        .join(WatchlistRow, WatchlistRow.id == RecipientRow.watchlist_id)
        .where(WatchlistRow.removed_at.is_(None), RecipientRow.active.is_(False))
    )


def cancel_orphans(session: Session, *, owner: str | None = None) -> int:
    """Cancel every undelivered row that is no longer owed (see the module
    docstring); with `owner`, only rows leased to it. Returns how many."""
    return cancel_alerts(
        session, removed_watchlists_recipients(), reason=WATCHLIST_REMOVED, owner=owner
    ) + cancel_alerts(session, removed_recipients(), reason=RECIPIENT_REMOVED, owner=owner)
