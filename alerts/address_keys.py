"""The address an alert goes to, as one key across watchlists. Pure.

Each watchlist has its own recipient rows; two watchlists naming the same
email address (or the same webhook URL with the same secret) share an
address key, and the outbox groups their alerts of one item (or one folded
story) into one message (storage.alert_groups).

The key is a digest of (channel, target as written, secret as written): the
written form, not the resolved one, because the outbox row is written in the
crawl's transaction where `${NAME}` may not resolve, and a digest so that no
target or secret is copied into another column. An email address compares
with its domain lowercased (the local part is case-sensitive by RFC 5321).
`${HOOK}` and the URL it names are therefore two addresses.
"""

from __future__ import annotations

import hashlib

from alerts.alert_records import Recipient


def address_key(channel: str, target: str, secret: str | None = None) -> str:
    """A 32-hex-digit key naming one destination (see the module docstring)."""
    written = target.strip()
    if channel == "email" and "@" in written:
        local, _, domain = written.rpartition("@")
        written = f"{local}@{domain.lower()}"
    raw = "\x00".join((channel, written, secret or ""))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def recipient_key(r: Recipient) -> str:
    return address_key(r.channel, r.target, r.secret)
