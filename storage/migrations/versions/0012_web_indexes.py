"""match_terms.matched_at and the web view's list indexes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

The web view lists matches newest `matched_at` first, with optional filters,
reading until a page is full. A filter that passes few matches read every
match: `/?watchlist=brics&term=SAM&language=ru` scanned all 20,000 of the
bench (60 ms of CPU, 220-290 ms under load). Two index paths make a filtered
list read only the matches it may show:

- `match_terms` gains `matched_at` (the match's, copied by the triggers), and
  `ix_match_terms_term (term, matched_at, match_id, watchlist_id, language)`:
  a term filter walks that term's rows newest first, and tests the
  watchlist and language filters on the index entry itself;
- `ix_matches_watchlist (watchlist_id, matched_at, id)`: a watchlist filter
  walks that watchlist's matches newest first (also what deleting a
  watchlist's matches by cascade needed: `matches` had no index leading with
  `watchlist_id`);
- `ix_outbox_status_created (status, created_at, id)`: `/alerts` lists the
  newest 200 failed and pending rows; it read and sorted every row of the
  status (5 ms each with 2,000 rows, growing with the outbox).

`match_terms` is derived data, so it is rebuilt rather than altered: 0010's
triggers and table are dropped, the table is created with the new column and
index, filled from `matches` joined to `items`, and the triggers are created
again (now copying `matched_at`, and rewriting a match's rows when its
`matched_at` changes). A later migration that rebuilds `matches` or `items`
by a SQLite batch table copy drops their triggers: it must call THIS
module's `create_triggers` (not 0010's, which writes no `matched_at`).
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_COLUMNS = "match_id, term, watchlist_id, day, language, matched_at"
_SQLITE_TERMS = (
    "json_each(CASE WHEN json_valid(NEW.terms) AND json_type(NEW.terms) = 'array'"
    " THEN NEW.terms ELSE '[]' END)"
)
_SQLITE_ROWS = (
    f"INSERT INTO match_terms ({_COLUMNS})"
    " SELECT DISTINCT NEW.id, CAST(j.value AS TEXT), NEW.watchlist_id,"
    " substr(i.published, 1, 10), i.language, NEW.matched_at"
    f" FROM items AS i, {_SQLITE_TERMS} AS j"
    " WHERE i.id = NEW.item_id AND j.value IS NOT NULL;"
)
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER tr_match_terms_insert AFTER INSERT ON matches BEGIN {_SQLITE_ROWS} END",
    "CREATE TRIGGER tr_match_terms_update AFTER UPDATE OF terms, item_id, watchlist_id,"
    " matched_at ON matches BEGIN DELETE FROM match_terms WHERE match_id = OLD.id;"
    f" {_SQLITE_ROWS} END",
    "CREATE TRIGGER tr_match_terms_item AFTER UPDATE OF published, language ON items"
    " WHEN OLD.published IS NOT NEW.published OR OLD.language IS NOT NEW.language"
    " BEGIN UPDATE match_terms SET day = substr(NEW.published, 1, 10),"
    " language = NEW.language"
    " WHERE match_id IN (SELECT id FROM matches WHERE item_id = NEW.id); END",
]

_PG_DAY = "to_char(i.published AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
POSTGRES_TRIGGERS = [
    f"""
CREATE FUNCTION match_terms_of_match() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM match_terms WHERE match_id = OLD.id;
    END IF;
    INSERT INTO match_terms ({_COLUMNS})
    SELECT DISTINCT NEW.id, t, NEW.watchlist_id, {_PG_DAY}, i.language, NEW.matched_at
    FROM items AS i,
         jsonb_array_elements_text(CASE WHEN jsonb_typeof(CAST(NEW.terms AS jsonb)) = 'array'
                                        THEN CAST(NEW.terms AS jsonb)
                                        ELSE CAST('[]' AS jsonb) END) AS t
    WHERE i.id = NEW.item_id AND t IS NOT NULL;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER tr_match_terms_insert AFTER INSERT OR UPDATE OF terms, item_id,"
    " watchlist_id, matched_at ON matches FOR EACH ROW EXECUTE FUNCTION match_terms_of_match()",
    """
CREATE FUNCTION match_terms_of_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE match_terms
    SET day = to_char(NEW.published AT TIME ZONE 'UTC', 'YYYY-MM-DD'), language = NEW.language
    WHERE match_id IN (SELECT id FROM matches WHERE item_id = NEW.id);
    RETURN NULL;
END $$""",
    "CREATE TRIGGER tr_match_terms_item AFTER UPDATE OF published, language ON items"
    " FOR EACH ROW WHEN (OLD.published IS DISTINCT FROM NEW.published"
    " OR OLD.language IS DISTINCT FROM NEW.language)"
    " EXECUTE FUNCTION match_terms_of_item()",
]

_SQLITE_BACKFILL = (
    f"INSERT INTO match_terms ({_COLUMNS})"
    " SELECT DISTINCT m.id, CAST(j.value AS TEXT), m.watchlist_id,"
    " substr(i.published, 1, 10), i.language, m.matched_at"
    " FROM matches AS m JOIN items AS i ON i.id = m.item_id,"
    " json_each(CASE WHEN json_valid(m.terms) AND json_type(m.terms) = 'array'"
    " THEN m.terms ELSE '[]' END) AS j WHERE j.value IS NOT NULL"
)
_POSTGRES_BACKFILL = (
    f"INSERT INTO match_terms ({_COLUMNS})"
    f" SELECT DISTINCT m.id, t, m.watchlist_id, {_PG_DAY}, i.language, m.matched_at"
    " FROM matches AS m JOIN items AS i ON i.id = m.item_id,"
    " jsonb_array_elements_text(CASE WHEN jsonb_typeof(CAST(m.terms AS jsonb)) = 'array'"
    " THEN CAST(m.terms AS jsonb) ELSE CAST('[]' AS jsonb) END) AS t WHERE t IS NOT NULL"
)


def _revision_0010() -> ModuleType:
    """Migration 0010's module (migrations are files, not a package): its
    `downgrade` drops the old table and triggers, its `upgrade` makes them."""
    path = Path(__file__).with_name("0010_match_terms.py")
    spec = importlib.util.spec_from_file_location("newswatch_migration_0010", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def create_triggers() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRES_TRIGGERS:
        op.execute(statement)


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("tr_match_terms_insert", "tr_match_terms_update", "tr_match_terms_item"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS tr_match_terms_insert ON matches")
        op.execute("DROP TRIGGER IF EXISTS tr_match_terms_item ON items")
        op.execute("DROP FUNCTION IF EXISTS match_terms_of_match()")
        op.execute("DROP FUNCTION IF EXISTS match_terms_of_item()")


def upgrade() -> None:
    _revision_0010().downgrade()  # 0010's triggers, index and table
    op.create_table(
        "match_terms",
        sa.Column("match_id", sa.Integer(), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("watchlist_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["matches.id"],
            name="fk_match_terms_match_id_matches",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("match_id", "term", name="pk_match_terms"),
    )
    op.create_index(
        "ix_match_terms_day", "match_terms", ["day", "term", "language", "watchlist_id"]
    )
    op.create_index(
        "ix_match_terms_term",
        "match_terms",
        ["term", "matched_at", "match_id", "watchlist_id", "language"],
    )
    op.create_index("ix_matches_watchlist", "matches", ["watchlist_id", "matched_at", "id"])
    op.create_index("ix_outbox_status_created", "outbox", ["status", "created_at", "id"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(_SQLITE_BACKFILL if sqlite else _POSTGRES_BACKFILL)
    create_triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_index("ix_outbox_status_created", table_name="outbox")
    op.drop_index("ix_matches_watchlist", table_name="matches")
    op.drop_index("ix_match_terms_term", table_name="match_terms")
    op.drop_index("ix_match_terms_day", table_name="match_terms")
    op.drop_table("match_terms")
    _revision_0010().upgrade()  # 0010's table, filled, and its triggers
