"""Claim cost with one message per address (storage.alert_groups), as a ratio.

An outbox of `--history` sent rows and `--pending` due immediate rows (two
watchlists, `--items` items) is built once per scenario; then
`storage.outbox.claim_due(limit=200)` is timed `--repeat` times, each in a
transaction that is rolled back (so every claim sees the same rows):

- baseline: `address_key` NULL on every row, the claim as before 0009 (no
  group to read, the group filter false at once);
- distinct: every watchlist has its own address (keys set, no relatives);
- overlap: both watchlists name the same address (every claimed row has a
  relative: the claim reads and takes it, and fewer batches come back).

Figures are medians, reported as ratios to the baseline of the same run.
`--old-outbox FILE` (e.g. `git show land:storage/outbox.py > /tmp/o.py`)
adds "before": the baseline rows claimed by that file's claim_due, the code
before this change.

    .venv/bin/python bench/claims.py [--db sqlite|postgresql+psycopg://…]
        [--history 50000] [--pending 2000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from alerts.address_keys import address_key
from storage.db import make_engine, session_factory, upgrade
from storage.outbox import claim_due
from storage.tables import (
    ItemRow,
    MatchRow,
    OutboxRow,
    RecipientRow,
    SourceRow,
    WatchlistRow,
)

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def build(url: str, scenario: str, history: int, pending: int) -> tuple[object, object]:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as c:
            c.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(engine)
    factory = session_factory(engine)
    with factory() as s, s.begin():
        src = SourceRow(name="s", url="https://s.example/feed", kind="feed", created_at=T0)
        s.add(src)
        wls = [WatchlistRow(name=f"w{i}", created_at=T0, updated_at=T0) for i in range(2)]
        s.add_all(wls)
        s.flush()
        target = "https://hook.example/x"
        rcpts = [
            RecipientRow(watchlist_id=w.id, channel="webhook", target=f"{target}{i}")
            for i, w in enumerate(wls)
        ]
        s.add_all(rcpts)
        s.flush()
        keys: list[str | None] = {
            "baseline": [None, None],
            "distinct": [address_key("webhook", r.target) for r in rcpts],
            "overlap": [address_key("webhook", target)] * 2,
        }[scenario]
        n_items = (history + pending) // 2
        items = [
            {
                "source_id": src.id,
                "url": f"https://s.example/{n}",
                "guid": str(n),
                "title": f"t{n}",
                "summary": "",
                "body": "",
                "published": T0,
                "content_hash": str(n),
                "fetched_at": T0,
            }
            for n in range(n_items)
        ]
        s.execute(ItemRow.__table__.insert(), items)
        item_ids = [i for (i,) in s.execute(text("SELECT id FROM items ORDER BY id"))]
        matches = [
            {
                "item_id": i,
                "watchlist_id": w.id,
                "terms": [],
                "hits": [],
                "snippets": [],
                "matched_at": T0,
            }
            for i in item_ids
            for w in wls
        ]
        s.execute(MatchRow.__table__.insert(), matches)
        mids = {
            (i, w): m
            for m, i, w in s.execute(text("SELECT id, item_id, watchlist_id FROM matches"))
        }
        rows = []
        for n, i in enumerate(item_ids):
            for k, (w, r) in enumerate(zip(wls, rcpts, strict=True)):
                sent = n < history // 2
                rows.append(
                    {
                        "match_id": mids[(i, w.id)],
                        "item_id": i,
                        "watchlist_id": w.id,
                        "recipient_id": r.id,
                        "status": "sent" if sent else "pending",
                        "attempts": 1 if sent else 0,
                        "next_attempt_at": T0,
                        "created_at": T0 + timedelta(seconds=n),
                        "address_key": keys[k],
                    }
                )
        s.execute(OutboxRow.__table__.insert(), rows)
    return engine, factory


def measure(factory: object, repeat: int, claim: Any = claim_due) -> tuple[float, int]:
    times, batches = [], 0
    for _ in range(repeat):
        with factory() as s:  # type: ignore[operator]
            s.begin()
            started = time.perf_counter()
            got = claim(
                s,
                now=T0 + timedelta(days=1),
                owner="bench/1",
                lease=timedelta(minutes=10),
                limit=200,
            )
            times.append(time.perf_counter() - started)
            batches = len(got)
            s.rollback()
    return statistics.median(times), batches


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", default="sqlite")
    p.add_argument("--history", type=int, default=50_000)
    p.add_argument("--pending", type=int, default=2_000)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--old-outbox", default=None)
    a = p.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in ("baseline", "distinct", "overlap"):
            url = f"sqlite:///{tmp}/{scenario}.db" if a.db == "sqlite" else a.db
            engine, factory = build(url, scenario, a.history, a.pending)
            results[scenario] = measure(factory, a.repeat)
            if scenario == "baseline" and a.old_outbox:
                spec = importlib.util.spec_from_file_location("old_outbox", a.old_outbox)
                assert spec is not None and spec.loader is not None
                old = importlib.util.module_from_spec(spec)
                sys.modules["old_outbox"] = old
                spec.loader.exec_module(old)
                results["before"] = measure(factory, a.repeat, old.claim_due)
            engine.dispose()  # type: ignore[attr-defined]
    base = results.get("before", results["baseline"])[0]
    print(f"backend={a.db.split(':')[0]} history={a.history} pending={a.pending} limit=200")
    for name, (median, batches) in results.items():
        print(
            f"{name:9s} claim median {median * 1000:7.1f} ms"
            f"  ratio {median / base:5.2f}  batches {batches}"
        )


if __name__ == "__main__":
    main()
