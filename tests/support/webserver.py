"""The web view served on 127.0.0.1 from a background thread, for tests and
the bench (a real socket, a real aiohttp server, no test client)."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class ServedApp:
    app: web.Application
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServedApp:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("web app did not start")
        return self

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: str


def fetch(url: str, *, headers: dict[str, str] | None = None, data: bytes | None = None,
          method: str | None = None) -> Reply:  # fmt: skip
    """One request without following redirects; any status comes back as a Reply."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with opener.open(request, timeout=10) as r:
            return Reply(r.status, dict(r.headers.items()), r.read().decode())
    except urllib.error.HTTPError as e:
        return Reply(e.code, dict(e.headers.items()), e.read().decode())
