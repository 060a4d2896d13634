"""stories: changed_seq, the assignment that last wrote a story (and its index)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30

A process keeps the stories of the assignment window in memory
(scheduler.story_assignment.StoryAssigner) and, under the assignment lock,
brought it up to date by reading the head (id, first_seen, item_count) of
EVERY story in the window at every batch: ~2.7 us a story on PostgreSQL,
135 ms a batch at 50,000 stories, under the lock that every replica's saves
wait for. Every assignment now bumps `story_assign_lock.n` (under the lock,
so in commit order) and stamps the stories it writes with it; a cache reads
only `changed_seq > last seen` (this index) and reads the whole window only
when it starts or its window moves out of what it covered. Existing rows
get 0 (a cache starts with a full read).
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.add_column(
            sa.Column("changed_seq", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_index("ix_stories_changed_seq", "stories", ["changed_seq"])


def downgrade() -> None:
    op.drop_index("ix_stories_changed_seq", table_name="stories")
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("changed_seq")
