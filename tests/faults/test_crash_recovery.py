"""kill -9 of `newswatch crawl` at every step between fetch and "alert marked
sent", deterministic (NEWSWATCH_CRASH_AT, see scheduler/crash_points.py) and at
random moments, on SQLite and PostgreSQL.

Each round publishes new items and runs a crawl that is killed. Nothing waits
for the dead process's leases to expire: its pid is gone, so the next run
takes its sources and alerts back at once (storage.leases). Then clean crawls
run until the outbox is drained; `test_the_first_crawl_after_each_kill_...`
asserts that one immediate clean crawl is enough. Afterwards every expected
(item, watchlist, recipient) alert has arrived, nothing is half-written, and
repeats are bounded: a kill can only repeat alerts whose send had completed
and whose mark had not, at most one per recipient sending at that moment
(recipients are delivered in parallel, 3 here); email repeats share their
Message-ID.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.conftest import Database
from tests.faults.conftest import NEWSWATCH, base_env, reap, run_newswatch
from tests.faults.corpus import (
    Corpus,
    consistency_problems,
    corpus,
    outbox_counts,
)
from tests.support.daemon import wait_for

pytestmark = pytest.mark.faults

RECIPIENTS_IN_PARALLEL = 3  # webhook A, webhook B, email: one send each at a time
DETERMINISTIC = [
    "after_fetch",
    "after_fetch:3",
    "after_store",
    "after_store:2",
    "after_commit",
    "after_commit:4",
    "after_send",
    "after_send:25",
    "after_send:60",
]
RANDOM_KILLS = 5


@dataclass
class Tally:
    kills: int = 0
    send_kills: int = 0  # kills that may have landed between a send and its mark
    sure_repeats: int = 0  # after_send kills: the alert just sent is certainly repeated
    rounds: int = 0


def _env(db: Database, c: Corpus, **extra: str) -> dict[str, str]:
    return base_env(db.url, NEWSWATCH_SMTP_URL=c.smtp_url, NEWSWATCH_FETCH_TIMEOUT="5", **extra)


def _crash_round(db: Database, c: Corpus, point: str, tally: Tally) -> None:
    run = run_newswatch(["crawl"], _env(db, c, NEWSWATCH_CRASH_AT=point), timeout=60)
    if run.code == -signal.SIGKILL:
        tally.kills += 1
        tally.send_kills += point.startswith("after_send")
        tally.sure_repeats += point.startswith("after_send")
    else:  # the point was not reached this often: a clean run
        assert run.code == 0, run.err[-2000:]


def _random_round(db: Database, c: Corpus, rng: random.Random, tally: Tally) -> None:
    proc = subprocess.Popen(
        [NEWSWATCH, "crawl"],
        env=_env(db, c),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(rng.uniform(0.9, 2.2))  # start-up takes ~1 s; then fetch, store, deliver
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    code, _ = reap(proc, 30)
    if killed:
        tally.kills += 1
        tally.send_kills += 1  # it may have been delivering: count it as able to repeat
    else:
        assert code == 0


@pytest.mark.timeout(400)
def test_kill_9_at_every_step_loses_nothing(db: Database) -> None:
    rng = random.Random(7)
    tally = Tally()
    with corpus() as c:
        c.hook_delay = 0.002
        c.seed(db)
        c.publish(24)
        for point in DETERMINISTIC:
            _crash_round(db, c, point, tally)
            c.publish(8)
            tally.rounds += 1
        for _ in range(RANDOM_KILLS):
            _random_round(db, c, rng, tally)
            c.publish(8)
            tally.rounds += 1
        for _ in range(3):  # then run without faults until done
            final = run_newswatch(["crawl"], _env(db, c), timeout=60)
            assert final.code == 0, final.err[-2000:]
            if outbox_counts(db)["pending"] == 0:
                break

        assert tally.kills >= len(DETERMINISTIC)  # the crash points were reached
        assert len(c.expected()) >= 200
        _check_everything_delivered(db, c, tally)


EACH_POINT = ["after_fetch", "after_store", "after_commit", "after_send", "after_send:10"]


@pytest.mark.timeout(400)  # 5 rounds of 2 crawls, ~5 s each, slower on a loaded machine
def test_the_first_crawl_after_each_kill_delivers_everything_owed(db: Database) -> None:
    """#10: after 10 kill -9s, two immediate crawls delivered nothing (the dead
    process's 10-minute claims). Now the first clean crawl after a kill at
    each crash point delivers every alert owed so far, and polls every source."""
    tally = Tally()
    with corpus() as c:
        c.hook_delay = 0.002
        c.seed(db)
        c.publish(12)
        for point in EACH_POINT:
            _crash_round(db, c, point, tally)
            clean = run_newswatch(["crawl"], _env(db, c), timeout=60)
            assert clean.code == 0, clean.err[-2000:]
            owed = set(c.expected()) - set(c.delivered())
            assert not owed, (point, len(owed), clean.out, clean.err[-1000:])
            assert outbox_counts(db)["pending"] == 0, (point, outbox_counts(db), clean.err[-1000:])
            assert "another running newswatch" not in clean.err, clean.err
            c.publish(12)
            tally.rounds += 1
        assert tally.kills == len(EACH_POINT)
        final = run_newswatch(["crawl"], _env(db, c), timeout=60)
        assert final.code == 0, final.err[-2000:]
        _check_everything_delivered(db, c, tally)


def _check_everything_delivered(db: Database, c: Corpus, tally: Tally) -> None:
    expected, got = c.expected(), c.delivered()
    missing = set(expected) - set(got)
    unexpected = set(got) - set(expected)
    duplicates = sum(got.values()) - len(got)
    ids_per_item: dict[str, set[str]] = {}
    for url, msg_id in c.emails():
        ids_per_item.setdefault(url, set()).add(msg_id)
    summary = (
        f"{db.backend}: {len(expected)} alerts expected, {len(got)} delivered, "
        f"{len(missing)} lost, {duplicates} repeats, {tally.kills} kills "
        f"({tally.send_kills} during delivery)"
    )
    print(summary)
    assert len(expected) >= 60, summary
    assert not missing, f"{summary}; lost: {sorted(missing)[:5]}"
    assert not unexpected, sorted(unexpected)[:5]
    assert tally.sure_repeats <= duplicates <= tally.send_kills * RECIPIENTS_IN_PARALLEL, summary
    assert all(len(ids) == 1 for ids in ids_per_item.values()), ids_per_item
    assert outbox_counts(db) == Counter({"sent": len(expected)}), outbox_counts(db)
    assert consistency_problems(db) == []


DAEMON_POINTS = ["after_fetch:2", "after_store:2", "after_commit:3", "after_send", "after_send:20"]


def _daemon(db: Database, c: Corpus, **extra: str) -> subprocess.Popen[bytes]:
    env = _env(
        db,
        c,
        NEWSWATCH_MIN_INTERVAL="1",
        NEWSWATCH_POLL_TICK="0.2",
        NEWSWATCH_DELIVER_EVERY="0.5",
        NEWSWATCH_PARSE_WORKERS="0",
        **extra,
    )
    return subprocess.Popen(
        [NEWSWATCH, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@pytest.mark.timeout(400)
def test_kill_9_of_the_daemon_at_every_step_loses_nothing(db: Database) -> None:
    """The daemon polls (every 2 s) and delivers on its own schedule; each run
    dies at a crash point, then the next daemon starts at once (as systemd
    restarts one after an OOM kill) and takes the dead one's work back."""
    tally = Tally()
    with corpus() as c:
        c.hook_delay = 0.002
        c.seed(db)
        c.publish(24)
        for point in DAEMON_POINTS:
            code, _ = reap(_daemon(db, c, NEWSWATCH_CRASH_AT=point), 40)
            assert code == -signal.SIGKILL, (point, code)  # reached (or killed at 40 s)
            tally.kills += 1
            tally.send_kills += 1  # deliveries run beside polls: any kill may hit a send
            tally.sure_repeats += point.startswith("after_send")
            c.publish(8)
            tally.rounds += 1
        proc = _daemon(db, c)
        try:
            assert wait_for(
                lambda: (
                    set(c.delivered()) >= set(c.expected()) and outbox_counts(db)["pending"] == 0
                ),
                60,
            ), (len(c.delivered()), len(c.expected()), outbox_counts(db))
        finally:
            proc.send_signal(signal.SIGTERM)
            code, _ = reap(proc, 15)
        assert code == 0
        _check_everything_delivered(db, c, tally)
