"""Watchlist queries. Import replaces a watchlist's definition in place:
its id and its recipients' ids stay stable, so a re-import neither orphans
nor repeats alerts. A recipient dropped from the file (or every recipient of
a removed watchlist) has its undelivered alerts cancelled in the same
transaction (storage.cancellations)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from alerts.alert_records import Query, Recipient, Rule, Term, Watchlist
from storage import StorageError
from storage.cancellations import (
    RECIPIENT_REMOVED,
    WATCHLIST_REMOVED,
    cancel_alerts,
    hold_claim_lock,
)
from storage.tables import RecipientRow, RuleRow, WatchlistRow


class WatchlistNotFound(StorageError):
    pass


@dataclass(frozen=True, slots=True)
class ActiveWatchlist:
    """A watchlist with the ids the outbox needs."""

    id: int
    watchlist: Watchlist
    recipient_ids: tuple[tuple[int, Recipient], ...]


def save_watchlists(session: Session, watchlists: Sequence[Watchlist], now: datetime) -> int:
    """Create or replace each watchlist (matched by name). Returns how many
    undelivered alerts of recipients no longer in it were cancelled."""
    hold_claim_lock(session)  # no claim between this reconciliation and the commit
    cancelled = 0
    for wl in watchlists:
        row = session.scalar(select(WatchlistRow).where(WatchlistRow.name == wl.name))
        if row is None:
            row = WatchlistRow(name=wl.name, created_at=now)
            session.add(row)
        row.digest = wl.digest
        row.stories = wl.stories
        row.languages = list(wl.languages)
        row.exclude = list(wl.exclude)
        row.examples = {"match": list(wl.examples_match), "no_match": list(wl.examples_no_match)}
        row.removed_at = None
        row.updated_at = now
        session.flush()
        session.execute(delete(RuleRow).where(RuleRow.watchlist_id == row.id))
        session.add_all(_rule_rows(row.id, wl.rules))
        cancelled += _sync_recipients(session, row.id, wl.notify)
    session.flush()
    return cancelled


def _rule_rows(watchlist_id: int, rules: Sequence[Rule]) -> list[RuleRow]:
    rows = []
    for pos, rule in enumerate(rules):
        if isinstance(rule, Query):
            rows.append(
                RuleRow(
                    watchlist_id=watchlist_id,
                    position=pos,
                    kind="query",
                    text=rule.query,
                    aliases=[],
                    case_sensitive=rule.case_sensitive,
                )
            )
        else:
            rows.append(
                RuleRow(
                    watchlist_id=watchlist_id,
                    position=pos,
                    kind="term",
                    text=rule.term,
                    aliases=rule.alias_entries(),
                    case_sensitive=rule.case_sensitive,
                )
            )
    return rows


def _sync_recipients(session: Session, watchlist_id: int, notify: Sequence[Recipient]) -> int:
    """Activate the recipients of `notify`, deactivate the others, and cancel
    the undelivered alerts of every inactive one (those deactivated now, and
    any left pending by older versions). Returns how many were cancelled."""
    existing = {
        (r.channel, r.target): r
        for r in session.scalars(
            select(RecipientRow).where(RecipientRow.watchlist_id == watchlist_id)
        )
    }
    for r in existing.values():
        r.active = False
    for pos, rec in enumerate(notify):
        row = existing.get((rec.channel, rec.target))
        if row is None:
            row = RecipientRow(watchlist_id=watchlist_id, channel=rec.channel, target=rec.target)
            session.add(row)
        row.secret = rec.secret
        row.position = pos
        row.active = True
    gone = [r.id for r in existing.values() if not r.active]
    return cancel_alerts(session, gone, reason=RECIPIENT_REMOVED)


def stored_term(text: str, aliases: list[Any], case: bool | None) -> Term:
    """A Term from its row: `aliases` holds text, or `{alias, case_sensitive}`
    for an alias with its own case rule (rows written before hold only text)."""
    texts = tuple(str(a["alias"]) if isinstance(a, dict) else str(a) for a in aliases)
    cases = tuple(a.get("case_sensitive") if isinstance(a, dict) else None for a in aliases)
    return Term(text, texts, case, cases if any(c is not None for c in cases) else ())


def _load(session: Session, rows: Sequence[WatchlistRow]) -> list[ActiveWatchlist]:
    ids = [r.id for r in rows]
    if not ids:
        return []
    rules: dict[int, list[Rule]] = {i: [] for i in ids}
    for rr in session.scalars(
        select(RuleRow).where(RuleRow.watchlist_id.in_(ids)).order_by(RuleRow.position)
    ):
        rule: Rule = (
            Query(rr.text, rr.case_sensitive)
            if rr.kind == "query"
            else stored_term(rr.text, rr.aliases or [], rr.case_sensitive)
        )
        rules[rr.watchlist_id].append(rule)
    recipients: dict[int, list[tuple[int, Recipient]]] = {i: [] for i in ids}
    for rc in session.scalars(
        select(RecipientRow)
        .where(RecipientRow.watchlist_id.in_(ids), RecipientRow.active.is_(True))
        .order_by(RecipientRow.position)
    ):
        recipients[rc.watchlist_id].append(
            (rc.id, Recipient(rc.channel, rc.target, rc.secret))  # type: ignore[arg-type]
        )
    out = []
    for r in rows:
        examples = r.examples or {}
        wl = Watchlist(
            name=r.name,
            rules=tuple(rules[r.id]),
            exclude=tuple(r.exclude or ()),
            languages=tuple(r.languages or ()),
            notify=tuple(rec for _, rec in recipients[r.id]),
            digest=r.digest,  # type: ignore[arg-type]
            stories=r.stories,  # type: ignore[arg-type]
            examples_match=tuple(examples.get("match", ())),
            examples_no_match=tuple(examples.get("no_match", ())),
        )
        out.append(ActiveWatchlist(r.id, wl, tuple(recipients[r.id])))
    return out


def active_watchlists(
    session: Session, names: Sequence[str] | None = None
) -> list[ActiveWatchlist]:
    stmt = select(WatchlistRow).where(WatchlistRow.removed_at.is_(None)).order_by(WatchlistRow.name)
    if names is not None:
        stmt = stmt.where(WatchlistRow.name.in_(list(names)))
    return _load(session, list(session.scalars(stmt)))


def get_watchlist(session: Session, name: str) -> ActiveWatchlist:
    found = active_watchlists(session, [unicodedata.normalize("NFC", name)])
    if not found:
        raise WatchlistNotFound(f"no watchlist named {name!r}")
    return found[0]


def watchlist_name(session: Session, name: str) -> str:
    """The stored name `name` stands for (NFC, as stored), removed watchlists
    included: their matches and stories stay listable. WatchlistNotFound if
    no watchlist ever had it."""
    nfc = unicodedata.normalize("NFC", name)
    if session.scalar(select(WatchlistRow.id).where(WatchlistRow.name == nfc)) is None:
        raise WatchlistNotFound(f"no watchlist named {name!r}")
    return nfc


def remove_watchlist(session: Session, name: str, now: datetime) -> int:
    """Soft removal: the watchlist stops matching; its matches and sent alerts
    stay, its undelivered alerts are cancelled. Returns how many were."""
    name = unicodedata.normalize("NFC", name)  # names are stored in NFC (alerts.watchlist_files)
    row = session.scalar(
        select(WatchlistRow).where(WatchlistRow.name == name, WatchlistRow.removed_at.is_(None))
    )
    if row is None:
        raise WatchlistNotFound(f"no watchlist named {name!r}")
    row.removed_at = now
    hold_claim_lock(session)
    recipients = select(RecipientRow.id).where(RecipientRow.watchlist_id == row.id)
    return cancel_alerts(session, list(session.scalars(recipients)), reason=WATCHLIST_REMOVED)
