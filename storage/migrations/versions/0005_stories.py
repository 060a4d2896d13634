"""stories: stories, items.story_id, item_vectors, the assignment lock, outbox fold key

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Additive only: every existing item keeps `story_id` NULL until `newswatch
stories rebuild` (or the daemon) assigns it; a migration cannot load the encoder.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_seen", _UTC, nullable=False),
        sa.Column("last_seen", _UTC, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_language", sa.String(16), nullable=True),
        sa.Column("en_title", sa.Text(), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
    )
    op.create_index("ix_stories_first_seen", "stories", ["first_seen"])
    op.create_index("ix_stories_last_seen", "stories", ["last_seen"])
    _add_story_fk("items")
    op.create_index("ix_items_story_id", "items", ["story_id"])
    op.create_table(
        "item_vectors",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("encoder", sa.String(40), nullable=False),
        sa.Column("encoder_version", sa.String(20), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_item_vectors_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_vectors")),
    )
    op.create_table(
        "story_assign_lock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_story_assign_lock")),
    )
    op.execute("INSERT INTO story_assign_lock (id, n) VALUES (1, 0)")
    _add_story_fk("outbox")
    op.create_index(
        "ux_outbox_story_fold",
        "outbox",
        ["story_id", "watchlist_id", "recipient_id"],
        unique=True,
        sqlite_where=sa.text("story_id IS NOT NULL"),
        postgresql_where=sa.text("story_id IS NOT NULL"),
    )


def _add_story_fk(table: str) -> None:
    """A nullable `story_id` column referencing stories, added in place.

    On SQLite an inline REFERENCES in ADD COLUMN, not a batch table copy: the
    copy drops the old table, and with foreign keys on that would cascade into
    matches and outbox."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN story_id INTEGER"
            f" CONSTRAINT fk_{table}_story_id_stories REFERENCES stories (id)"
        )
        return
    op.add_column(table, sa.Column("story_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        f"fk_{table}_story_id_stories", table, "stories", ["story_id"], ["id"]
    )


def downgrade() -> None:
    """PostgreSQL only. SQLite cannot drop a column that takes part in a foreign
    key, and the batch table copy would drop `items`, cascading into matches and
    outbox with foreign keys on: restore the copy taken before upgrading instead."""
    if op.get_bind().dialect.name == "sqlite":
        raise NotImplementedError(
            "0004 cannot be downgraded on SQLite without losing matches and alerts;"
            " restore the database file saved before the upgrade"
        )
    op.drop_index("ux_outbox_story_fold", table_name="outbox")
    for table in ("outbox", "items"):
        op.drop_constraint(f"fk_{table}_story_id_stories", table, type_="foreignkey")
    op.drop_index("ix_items_story_id", table_name="items")
    op.drop_column("outbox", "story_id")
    op.drop_column("items", "story_id")
    op.drop_table("story_assign_lock")
    op.drop_table("item_vectors")
    op.drop_index("ix_stories_last_seen", table_name="stories")
    op.drop_index("ix_stories_first_seen", table_name="stories")
    op.drop_table("stories")
