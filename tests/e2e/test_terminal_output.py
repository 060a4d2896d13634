"""Feed text on a terminal (issue #16): no control character from a title, a
reason phrase or an error reaches the terminal raw, and rich never reads feed
text as markup. The CLI runs in a subprocess on a pseudo-terminal, so rich
believes it draws on a TTY; both databases."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from alerts.alert_records import Hit, Recipient, WatchlistMatch
from crawler.crawl_records import Item
from storage.items import store_items
from storage.matches import record_matches
from storage.tables import ItemRow, SourceRow
from storage.watchlists import active_watchlists
from tests.conftest import Database
from tests.integration.test_outbox import Clock, make_app, setup
from tests.support.env import clean_env

# Each class, several members: OSC 8 hyperlinks, SGR, screen clearing, BEL,
# 8-bit C1 CSI, bidi override, rich markup (a link, a lone closing tag, style).
TITLES = [
    "\x1b]8;;http://evil.example/x\x07Click SAM\x1b]8;;\x07",
    "\x1b[2J\x1b[31mred SAM\x1b[0m\x07",
    "\x9b31mC1 CSI SAM\x85next",
    "bidi \u202egnp.exe SAM",
    "[link=http://evil.example/x]Click me SAM[/link]",
    "[/link]",
    "[bold red]SAM[/] [/]",
]
ERRORS = ["HTTP 503 \x1b]8;;http://evil.example\x07Reason\x1b]8;;\x07", "[/] \x1b[5m\x07"]
RAW = [b"\x1b]", b"\x07", b"\xc2\x9b", b"\xc2\x85", "\u202e".encode()]


def _populate(db: Database) -> None:
    clock = Clock()
    app = make_app(db, clock)
    sid = setup(app, [Recipient("email", "a@example.org")])
    items = [
        Item(
            url=f"https://example.org/t/{i}",
            guid=str(i),
            title=title,
            summary=title,
            text="the SAM system",
            published=clock() - timedelta(minutes=i),
            language="en",
            content_hash=str(i),
        )
        for i, title in enumerate(TITLES)
    ]
    hit = Hit(rule="SAM", spelling="SAM", field="body", start=4, end=7)
    with app.session() as s:
        store_items(s, sid, items, clock())
        [active] = active_watchlists(s)
        for item_id in s.scalars(select(ItemRow.id)):
            found = WatchlistMatch("air-defence", ("SAM",), (hit,), ("the SAM system",))
            record_matches(s, item_id, [(active, found)], clock())
        s.execute(update(SourceRow).values(last_error=ERRORS[0]))


def _on_tty(args: list[str], db: Database) -> tuple[int, bytes]:
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 500, 0, 0))
    exe = Path(sys.executable).parent / "newswatch"
    env = clean_env(NEWSWATCH_DATABASE_URL=db.url, TERM="xterm-256color", COLUMNS="500")
    p = subprocess.Popen([str(exe), *args], stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    return p.wait(timeout=60), out


@pytest.mark.parametrize("args", [["matches"], ["alerts"], ["source", "list"]])
def test_feed_text_reaches_the_terminal_inert(args: list[str], db: Database) -> None:
    _populate(db)
    code, out = _on_tty(args, db)
    assert code == 0, out.decode(errors="replace")
    assert [r for r in RAW if r in out] == []
    text = out.decode()
    if args != ["source", "list"]:
        assert "Click me SAM" in text and "[link=http://evil.example/x]" in text
        assert "[/link]" in text  # shown, not parsed (a lone closing tag crashed rich)
        assert "\\x1b]8;;http://evil.example/x\\x07" in text  # escaped, visible
    else:
        assert "\\x1b]8;;http://evil.example\\x07Reason" in text


@pytest.mark.parametrize("title", TITLES + ERRORS)
def test_printable_leaves_no_control(title: str) -> None:
    from newswatch.cli_common import one_line, printable

    for shown in (printable(title), one_line(title)):
        assert shown.isprintable()
        assert not any(r.decode() in shown for r in RAW)
