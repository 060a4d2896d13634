"""outbox.address_key and outbox.folded_into: one message per address and item

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

`address_key` (alerts.address_keys) is written on every row by
record_matches; existing rows get it here, so alerts already sent fold a
late row of another watchlist too, and digests group per address. `folded_into` names the row whose
message carried a row marked sent without a message of its own.
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _key(channel: str, target: str, secret: str | None) -> str:
    # alerts.address_keys.address_key as of this revision (kept here so that a
    # later change there does not change what this migration wrote).
    written = target.strip()
    if channel == "email" and "@" in written:
        local, _, domain = written.rpartition("@")
        written = f"{local}@{domain.lower()}"
    return hashlib.sha256("\x00".join((channel, written, secret or "")).encode()).hexdigest()[:32]


def upgrade() -> None:
    # Plain ADD COLUMNs: SQLite's batch mode would copy and drop `outbox`.
    op.add_column("outbox", sa.Column("address_key", sa.String(32), nullable=True))
    op.add_column("outbox", sa.Column("folded_into", sa.Integer(), nullable=True))
    op.create_index("ix_outbox_address_item", "outbox", ["address_key", "item_id"])
    op.create_index("ix_outbox_address_story", "outbox", ["address_key", "story_id"])
    conn = op.get_bind()
    recipients = conn.execute(sa.text("SELECT id, channel, target, secret FROM recipients"))
    for rid, channel, target, secret in recipients.fetchall():
        conn.execute(
            sa.text(
                "UPDATE outbox SET address_key = :k WHERE recipient_id = :r"
            ),
            {"k": _key(channel, target, secret), "r": rid},
        )


def downgrade() -> None:
    op.drop_index("ix_outbox_address_story", "outbox")
    op.drop_index("ix_outbox_address_item", "outbox")
    op.drop_column("outbox", "folded_into")
    op.drop_column("outbox", "address_key")
