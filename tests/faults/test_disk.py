"""The SQLite database on a full disk and on a read-only filesystem: `crawl`
fails with one clear line (no traceback), the file stays intact
(PRAGMA integrity_check), and once space or write access is back, the next
crawl stores everything. The filesystem is a private tmpfs mounted for the
test (we run as root, which ignores file permissions); skipped where mount
is not permitted.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import base_env, run_newswatch
from tests.support.httpserver import LocalHTTPServer

pytestmark = pytest.mark.faults


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "fs"
    where.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where))
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {e}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _feed(server: LocalHTTPServer, items: int, text_bytes: int) -> str:
    base = server.url("").rstrip("/")
    body = "".join(
        f"<item><title>Item {i}</title><link>{base}/d/{i}</link>"
        f"<description>{'word ' * (text_bytes // 5)}{i}</description></item>"
        for i in range(items)
    )
    return server.serve(
        "/disk.xml", f'<rss version="2.0"><channel><title>d</title>{body}</channel></rss>'
    )


def _setup(db_url: str, feed_url: str) -> dict[str, str]:
    env = base_env(db_url, NEWSWATCH_FETCH_TIMEOUT="10")
    assert run_newswatch(["init"], env).code == 0
    r = run_newswatch(
        ["source", "add", feed_url, "--name", "disk", "--kind", "feed", "--alert-backlog"], env
    )
    assert r.code == 0, r.err
    return env


def _integrity(path: Path, immutable: bool = False) -> str:
    conn = sqlite3.connect(f"file:{path}?{'immutable=1' if immutable else 'mode=ro'}", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _items(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])
    finally:
        conn.close()


def _one_clear_line(err: str, *words: str) -> None:
    assert "Traceback" not in err, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("newswatch:") and any(w in last.lower() for w in words), err[-2000:]


def test_disk_full(small_fs: Path, http_server: LocalHTTPServer) -> None:
    path = small_fs / "nw.db"
    env = _setup(f"sqlite:///{path}", _feed(http_server, 300, 8_000))  # ~2.4 MB of text
    r = run_newswatch(["crawl"], env)
    assert r.code in (1, 3), r.err[-2000:]  # 3: its one source failed (README: exit codes)
    _one_clear_line(r.err, "full", "disk")
    assert _integrity(path) == "ok"
    assert _items(path) == 0  # the source's one transaction rolled back as a whole
    _mount("-o", "remount,size=64m", str(small_fs))
    again = run_newswatch(["crawl"], env)
    assert again.code == 0 and "300 new items" in again.out, again.out + again.err[-2000:]
    assert _integrity(path) == "ok"


def test_read_only_filesystem(small_fs: Path, http_server: LocalHTTPServer) -> None:
    path = small_fs / "nw.db"
    env = _setup(f"sqlite:///{path}", _feed(http_server, 5, 100))
    _mount("-o", "remount,ro", str(small_fs))
    r = run_newswatch(["crawl"], env)
    assert r.code != 0 or "failed" in r.out, r.out
    _one_clear_line(r.err, "read-only", "readonly", "read only", "unable to open")
    assert _integrity(path, immutable=True) == "ok"
    _mount("-o", "remount,rw", str(small_fs))
    again = run_newswatch(["crawl"], env)
    assert again.code == 0 and "5 new items" in again.out, again.out + again.err[-2000:]
    assert _integrity(path) == "ok"
