"""`crawl` honours the leases of another live process and says what it
skipped and until when (#10 part 4)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from alerts.alert_records import Recipient
from storage.leases import OwnerId, machine_id, owner_id, parse_owner, process_start
from storage.tables import OutboxRow, SourceRow
from tests.conftest import Database
from tests.e2e.conftest import CLI
from tests.integration.test_outbox import Clock, add_items, make_app, setup


def test_crawl_skips_what_a_live_process_holds_and_says_so(db: Database, cli: CLI) -> None:
    now = datetime.now(UTC)
    app = make_app(db, Clock(now))
    setup(app, [Recipient("webhook", "http://127.0.0.1:9/hook")])  # source "isw"
    add_items(app, 1, 2)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = parse_owner(owner_id())
        assert me is not None
        owner = str(OwnerId(me.host, other.pid, process_start(other.pid), machine_id(), "live"))
        until = now + timedelta(minutes=5)
        with db.factory.begin() as s:
            s.execute(update(SourceRow).values(lease_owner=owner, lease_until=until))
            s.execute(update(OutboxRow).values(lease_owner=f"{owner}/c1a1m", lease_until=until))
        r = cli("crawl")
    finally:
        other.kill()
        other.wait()
    assert r.code == 0, r.err
    stamp = until.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert (
        f"skipped 1 sources another running newswatch is polling (its lease ends by {stamp})"
        in r.err
    )
    assert (
        f"skipped 2 alerts another running newswatch is delivering (its lease ends by {stamp})"
        in r.err
    )
    assert "0 polled" in r.out and "0 alerts sent" in r.out, r.out
