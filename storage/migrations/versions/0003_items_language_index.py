"""items: indexes for the web view (distinct languages; the trends join)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_items_language", "items", ["language"])
    op.create_index("ix_items_id_published_language", "items", ["id", "published", "language"])


def downgrade() -> None:
    op.drop_index("ix_items_id_published_language", table_name="items")
    op.drop_index("ix_items_language", table_name="items")
