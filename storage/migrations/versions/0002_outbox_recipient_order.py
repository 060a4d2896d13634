"""outbox: index for per-recipient delivery order

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_recipient_order", "outbox", ["recipient_id", "status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_recipient_order", table_name="outbox")
