"""PostgreSQL stopped and restarted several times while `newswatch run` works:
the daemon keeps running and loses no item and no alert.

The machine's shared PostgreSQL is never touched: the test runs a PRIVATE
cluster (initdb into a temporary directory, owned by the `postgres` OS user,
on a free port of 127.0.0.1) and stops/starts that one. Skipped, with the
reason, where initdb is not installed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import make_engine, session_factory, upgrade
from tests.conftest import Database
from tests.faults.corpus import consistency_problems, corpus, outbox_counts
from tests.support.daemon import Daemon, daemon_env, free_port, wait_for

pytestmark = pytest.mark.faults

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
RESTARTS = 3


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sock"
        self.port = free_port()
        self.bin = Path(BIN[-1])

    def _as_postgres(self, *cmd: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, timeout=60
        )

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir()
        shutil.chown(self.root, "postgres")
        shutil.chown(self.sockets, "postgres")
        self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w",
            "-l", str(self.root / "log"), "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not BIN or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) or runuser not installed")
    root = Path("/tmp") / f"nw-faults-pg-{os.getpid()}-{free_port()}"
    c = Cluster(root)
    try:
        c.init()
        c.start()
        yield c
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            c.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_restarts_during_daemon_run(cluster: Cluster, tmp_path: Path) -> None:
    engine = make_engine(cluster.url)
    upgrade(engine)
    db = Database("postgres", cluster.url, engine, session_factory(engine))
    with corpus(feeds=2) as c:
        c.seed(db)
        c.publish(10)
        env = daemon_env(cluster.url, free_port(), NEWSWATCH_SMTP_URL=c.smtp_url)
        d = Daemon(env, tmp_path / "daemon.log").start()
        try:
            d.wait_healthy()
            for _ in range(RESTARTS):
                c.publish(6)
                time.sleep(1.0)
                engine.dispose()
                cluster.stop()
                c.publish(6)  # published while the database is down
                time.sleep(2.5)
                assert d.proc is not None and d.proc.poll() is None, d.log()[-3000:]
                cluster.start()
                time.sleep(1.0)
            assert wait_for(lambda: set(c.delivered()) >= set(c.expected()), 45), (
                f"{len(set(c.expected()) - set(c.delivered()))} alerts missing; " + d.log()[-3000:]
            )
            assert d.proc is not None and d.proc.poll() is None
            code, took = d.stop(signal.SIGTERM)
            assert code == 0 and took < 10
        finally:
            d.kill()
        log = d.log()
        unrecorded = sum(
            int(n)
            for n in re.findall(r"alert_unrecorded status=sent ids=\[([\d, ]+)\]", log)
            for n in [len(n.split(","))]
        )
        pending = outbox_counts(db)["pending"]
        print(
            f"restarts={RESTARTS} expected={len(c.expected())} pending={pending} "
            f"unrecorded={unrecorded} repeats={sum(c.delivered().values()) - len(c.delivered())}"
        )
        assert set(c.delivered()) == set(c.expected())
        # an alert sent just before an outage whose 'sent' mark failed stays pending
        # (leased) and is repeated once its lease expires: never lost
        assert pending <= unrecorded, log[-3000:]
        assert consistency_problems(db) == []
    engine.dispose()
