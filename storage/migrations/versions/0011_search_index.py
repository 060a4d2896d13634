"""search index: search_pending, and search_fts (SQLite) / search_terms (PostgreSQL)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

The prefilter index of `newswatch search` (storage.search_index). Existing
items are listed in search_pending, so searches stay correct (they scan
those) until `newswatch search --reindex` indexes them; the migration itself
stays SQL-only and fast.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_pending",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_search_pending_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_search_pending")),
    )
    op.execute("INSERT INTO search_pending (item_id) SELECT id FROM items")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE search_terms (item_id integer PRIMARY KEY "
            "REFERENCES items (id) ON DELETE CASCADE, terms tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_search_terms_terms ON search_terms USING gin (terms)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5(terms, content='', "
            "detail=none, tokenize=\"ascii tokenchars '_'\")"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE search_terms")
    else:
        op.execute("DROP TABLE search_fts")
    op.drop_table("search_pending")
