"""sources.baseline_pending: a new or re-enabled source's next poll is a baseline

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

A source never polled successfully yet gets the flag (its first poll must
not flood the inbox); every other existing source has had its baseline.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite's batch mode would copy and drop `sources`,
    # and the drop cascades to every item.
    op.add_column(
        "sources",
        sa.Column("baseline_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        sa.text("UPDATE sources SET baseline_pending = :yes WHERE last_success_at IS NULL").bindparams(
            yes=True
        )
    )


def downgrade() -> None:
    op.drop_column("sources", "baseline_pending")  # SQLite ≥ 3.35 drops a column in place
