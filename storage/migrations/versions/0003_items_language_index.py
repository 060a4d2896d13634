"""items: index on language (the web view lists the distinct languages)

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


def downgrade() -> None:
    op.drop_index("ix_items_language", table_name="items")
