"""Grouping immediate alerts to one address into one message. Pure: both stores
(storage.outbox, storage.memory) gather the rows and apply the plan.

Two immediate outbox rows belong to one message when they share an address
key (alerts.address_keys) and either the item, or, both being `stories: fold`
rows, the story (the outbox's `story_id` is set only on fold rows). Groups are
the connected components of that relation, so a group may span several
watchlists, recipients and (for a folded story) items.

At claim time, for each group that holds a row this claim took:

- a member is already `sent`: the message went out; the pending members
  this claim may take are marked sent with `folded_into` = the row that
  carried it, and nothing is sent again (a row that arrives late: a re-import,
  a backfill, a watchlist whose story item came later);
- a pending member is leased by another deliverer, or not due yet (backing
  off, paced): the claim gives its rows back, and the group waits for it (a
  message may name every watchlist only once they are all takeable);
- otherwise the claim takes every pending member and they go as one message,
  whose outcome (sent, retry, failed, paced) is recorded on all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: int
    address_key: str | None
    item_id: int
    story_id: int | None  # set only on `stories: fold` rows
    status: str
    lease_owner: str | None
    lease_until: datetime | None
    next_attempt_at: datetime
    created_at: datetime
    folded_into: int | None = None

    def key_pairs(self) -> list[tuple[str, str, int]]:
        if self.address_key is None:
            return []
        pairs = [(self.address_key, "item", self.item_id)]
        if self.story_id is not None:
            pairs.append((self.address_key, "story", self.story_id))
        return pairs


@dataclass(slots=True)
class GroupPlan:
    fold: dict[int, int] = field(default_factory=dict)  # row id -> row whose message carried it
    release: list[int] = field(default_factory=list)  # held rows given back (the group waits)
    take: list[int] = field(default_factory=list)  # free pending members to lease too
    leader: dict[int, int] = field(default_factory=dict)  # row id -> its message's first row


def components(rows: Iterable[GroupRow]) -> list[list[GroupRow]]:
    """Connected components over shared (address, item) or (address, fold story)."""
    rows = list(rows)
    parent = {r.id: r.id for r in rows}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[tuple[str, str, int], int] = {}
    for r in rows:
        for pair in r.key_pairs():
            other = first.setdefault(pair, r.id)
            a, b = find(other), find(r.id)
            if a != b:
                parent[max(a, b)] = min(a, b)
    out: dict[int, list[GroupRow]] = {}
    for r in rows:
        out.setdefault(find(r.id), []).append(r)
    return list(out.values())


def _free(r: GroupRow, now: datetime) -> bool:
    return r.lease_until is None or r.lease_until < now


def plan(rows: Sequence[GroupRow], *, owner: str, now: datetime) -> GroupPlan:
    """What a claim does with the groups of the rows it holds (see the module
    docstring). `rows` must hold every pending or sent member of those groups."""
    result = GroupPlan()
    for group in components(rows):
        held = [r for r in group if r.status == "pending" and r.lease_owner == owner]
        held = [r for r in held if not _free(r, now)]
        if not held:
            continue
        pending = [r for r in group if r.status == "pending"]
        sent = [r for r in group if r.status == "sent"]
        if sent:
            carrier = min(sent, key=lambda r: (r.created_at, r.id))
            into = carrier.folded_into or carrier.id
            for r in pending:
                if r in held or _free(r, now):
                    result.fold[r.id] = into
            continue
        others = [r for r in pending if r not in held]
        if any(not _free(r, now) or r.next_attempt_at > now for r in others):
            result.release += [r.id for r in held]
            continue
        result.take += [r.id for r in others]
        leader = min(pending, key=lambda r: (r.created_at, r.id)).id
        for r in pending:
            result.leader[r.id] = leader
    return result
