"""sitemap and spider sources: page_links.version, sources.spider

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Additive only: existing page links keep `version` NULL (a page source never
reads it), existing sources keep `spider` NULL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("page_links") as batch:
        batch.add_column(sa.Column("version", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("spider", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("spider")
    with op.batch_alter_table("page_links") as batch:
        batch.drop_column("version")
