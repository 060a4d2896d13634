"""SIGTERM during a crawl (fetching, storing, delivering), repeated, and during a
daemon's delivery: exit 0 within 10 s, nothing half-written, and the next
runs deliver everything with repeats bounded by the signals that hit a send.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Database
from tests.faults.conftest import NEWSWATCH, base_env, reap, run_newswatch
from tests.faults.corpus import (
    consistency_problems,
    corpus,
    expire_leases,
    make_due,
    outbox_counts,
)
from tests.support.daemon import Daemon, daemon_env, free_port, wait_for

pytestmark = pytest.mark.faults

ROUNDS = 4


def test_sigterm_during_crawl_exits_0_and_loses_nothing(db: Database) -> None:
    rng = random.Random(11)
    with corpus() as c:
        c.hook_delay = 0.05  # delivery takes a while: some signals land in it
        for f in c.feeds:
            f.hold = 0.3
        c.seed(db)
        env = base_env(db.url, NEWSWATCH_SMTP_URL=c.smtp_url, NEWSWATCH_FETCH_TIMEOUT="5")
        signalled = 0
        for _ in range(ROUNDS):
            c.publish(15)
            proc = subprocess.Popen(
                [NEWSWATCH, "crawl"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            hits = len(c.server.requests)
            assert wait_for(lambda h=hits: len(c.server.requests) > h, 20)  # started crawling
            time.sleep(rng.uniform(0.0, 1.2))  # fetching, storing or sending
            if proc.poll() is None:
                sent = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                code, _ = reap(proc, 15)
                took = time.monotonic() - sent
                err = proc.stderr.read().decode() if proc.stderr else ""
                assert code == 0, (code, err[-2000:])
                assert took < 10, took
                assert "stopped by SIGTERM" in err and "Traceback" not in err, err[-2000:]
                signalled += 1
            else:
                reap(proc, 15)
            assert consistency_problems(db) == []
        assert signalled >= ROUNDS - 1
        # delivery leases of alerts that were in flight expire (10 min), and a
        # send the signal interrupted is retried after its backoff (its
        # recipient's later alerts wait behind it, in order): skip both waits
        expire_leases(db)
        make_due(db)
        for _ in range(3):
            r = run_newswatch(["crawl"], env)
            assert r.code == 0, r.err[-2000:]
            if outbox_counts(db)["pending"] == 0:
                break
        expected, got = c.expected(), c.delivered()
        assert set(got) == set(expected)
        assert sum(got.values()) - len(got) <= signalled * 3
        assert consistency_problems(db) == []


def test_sigterm_during_daemon_delivery(db: Database, tmp_path: Path) -> None:
    with corpus(feeds=2) as c:
        c.hook_delay = 0.05
        c.seed(db)
        c.publish(20)
        env = daemon_env(db.url, free_port(), NEWSWATCH_SMTP_URL=c.smtp_url)
        for n in range(2):
            d = Daemon(env, tmp_path / f"daemon{n}.log").start()
            try:
                d.wait_healthy()
                assert wait_for(lambda: sum(c.delivered().values()) > 0, 15), d.log()
                time.sleep(0.3 * n)
                code, took = d.stop(signal.SIGTERM)
            finally:
                d.kill()
            assert code == 0 and took < 10, (code, took, d.log()[-2000:])
            assert consistency_problems(db) == []
            c.publish(10)
        expire_leases(db)
        d = Daemon(env, tmp_path / "final.log").start()
        try:
            d.wait_healthy()
            assert wait_for(lambda: set(c.delivered()) == set(c.expected()), 30), d.log()[-3000:]
            code, _ = d.stop(signal.SIGTERM)
            assert code == 0
        finally:
            d.kill()
        got = c.delivered()
        assert sum(got.values()) - len(got) <= 2 * 3
