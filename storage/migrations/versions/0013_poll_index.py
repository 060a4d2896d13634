"""sources: an index for the due-source claim (next_poll_at, id) of enabled sources

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

`storage.sources.claim_due_sources` (every daemon tick and refill, and the
one-shot crawl) reads `WHERE enabled IS true AND (next_poll_at IS NULL OR
next_poll_at <= :now) AND … ORDER BY next_poll_at, id`. Without an index
each claim read and sorted the whole `sources` table. The index holds the
order key of enabled sources only (partial: its predicate is written as the
query writes it, `enabled IS true` / SQLite's `enabled IS 1`, so both
planners can prove the query implies it), and lets the planner read the
due rows in order or by an index range instead of scanning all of them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_sources_due",
        "sources",
        ["next_poll_at", "id"],
        sqlite_where=sa.text("enabled IS 1"),
        postgresql_where=sa.text("enabled IS true"),
    )


def downgrade() -> None:
    op.drop_index("ix_sources_due", table_name="sources")
