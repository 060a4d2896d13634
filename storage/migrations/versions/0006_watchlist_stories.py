"""watchlists.stories: `fold` (one alert per story) or `each` (one per item)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Additive only: every existing watchlist reads `each`, today's behaviour.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, not a batch table copy: on SQLite the copy drops
    # `watchlists`, which with foreign keys on cascades into rules, recipients,
    # matches and outbox. A constant default is allowed in place.
    op.add_column(
        "watchlists",
        sa.Column("stories", sa.String(10), nullable=False, server_default="each"),
    )


def downgrade() -> None:
    # SQLite >= 3.35 drops a column that no key or index uses in place.
    op.drop_column("watchlists", "stories")
