"""`GET /healthz` and `GET /metrics` on the daemon's own event loop (aiohttp.web).

/healthz answers 200 only when the scheduler runs (not stopping) AND the
database answers a `SELECT 1` now; otherwise 503, with a JSON body saying
which part is wrong, so a load balancer or orchestrator takes the replica out
or restarts it. The database probe runs in a worker thread (the driver is
synchronous) under a short timeout, and concurrent probes share one in-flight
check, so a scrape storm during an outage cannot pile up threads.

/metrics never touches the database: it renders counters that the jobs keep.

The port may face hostile clients (issue #16: 1,100 idle connections once
exhausted the file descriptors). So a connection that has not sent a whole
request head within IDLE_TIMEOUT seconds, or sits idle that long between
requests, is closed (aiohttp's keep-alive timer runs from the connection's
start and fires while no complete request is in); at most MAX_CONNECTIONS
are open, and a new one evicts the oldest (a slow client, not the probe that
arrived last); header lines and counts are bounded; no access log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from scheduler.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("newswatch.daemon")

PROBE_TIMEOUT = 3.0
IDLE_TIMEOUT = 5.0  # seconds: for a whole request head, and between requests
MAX_CONNECTIONS = 64
MAX_HEADER_LINE = 4096
MAX_HEADERS = 32


class DatabaseProbe:
    """Single-flight `SELECT 1`: callers that arrive during a probe await the same one."""

    def __init__(self, check: Callable[[], None]) -> None:
        self.check_connection = check  # raises when the database does not answer
        self._running: asyncio.Future[bool] | None = None

    async def check(self) -> bool:
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(asyncio.to_thread(self._probe))
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), PROBE_TIMEOUT)
        except TimeoutError:
            return False

    def _probe(self) -> bool:
        try:
            self.check_connection()
        except Exception:  # any failure means "not healthy"; the jobs log the outage
            return False
        return True


class BoundedServer(web.Server):
    """aiohttp's low-level server with a connection cap: past `max_connections`
    the oldest connection is closed, so the newest request (a health check)
    is served and the descriptors in use stay bounded."""

    def __init__(
        self, handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]], **kwargs: Any
    ) -> None:
        self.max_connections: int = kwargs.pop("max_connections", MAX_CONNECTIONS)
        super().__init__(handler, **kwargs)
        self._live: dict[Any, None] = {}  # insertion order: oldest first
        self.evicted = 0

    def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._live[handler] = None
        while len(self._live) > self.max_connections:
            oldest = next(iter(self._live))
            del self._live[oldest]
            self.evicted += 1
            oldest.force_close()

    def connection_lost(self, handler: Any, exc: BaseException | None = None) -> None:
        self._live.pop(handler, None)
        super().connection_lost(handler, exc)

    @property
    def open_connections(self) -> int:
        return len(self._live)


class BoundedAppRunner(web.AppRunner):
    """An AppRunner whose server is a BoundedServer: the web view's routes and
    the probes share one connection cap and one set of timeouts."""

    def __init__(self, app: web.Application, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.max_connections = max_connections
        self.bounded: BoundedServer | None = None

    async def _make_server(self) -> web.Server:
        # What AppRunner._make_server does (aiohttp 3.9–3.14), with our server class.
        app = self.app
        app._set_loop(asyncio.get_running_loop())
        app.on_startup.freeze()
        await app.startup()
        app.freeze()
        self.bounded = BoundedServer(
            app._handle,  # type: ignore[arg-type]  # aiohttp passes it a Request
            request_factory=app._make_request,
            max_connections=self.max_connections,
            **self._kwargs,
        )
        return self.bounded


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        probe: DatabaseProbe,
        scheduler_running: Callable[[], bool],
        metrics: Metrics,
        on_database: Callable[[bool], None] | None = None,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
        web_app: web.Application | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.probe = probe
        self.scheduler_running = scheduler_running
        self.metrics = metrics
        self.on_database = on_database
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.web_app = web_app  # the web view, mounted at the root beside the probes
        self.server: BoundedServer | None = None
        self._runner: BoundedAppRunner | None = None

    async def start(self) -> int:
        """Bind and serve; return the port actually bound (useful when port is 0)."""
        app = self.web_app if self.web_app is not None else web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = BoundedAppRunner(
            app,
            max_connections=self.max_connections,
            keepalive_timeout=self.idle_timeout,
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
            max_headers=MAX_HEADERS,
            access_log=None,
            handle_signals=False,
        )
        await self._runner.setup()
        self.server = self._runner.bounded
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = int(sockets[0].getsockname()[1]) if sockets else self.port
        log.info("http_started status=listening host=%s port=%d", self.host, bound)
        return bound

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.BaseRequest) -> web.Response:
        running = self.scheduler_running()
        database = await self.probe.check()
        if self.on_database is not None:
            self.on_database(database)
        healthy = running and database
        body = {
            "status": "ok" if healthy else "unavailable",
            "scheduler": "running" if running else "stopped",
            "database": "up" if database else "down",
        }
        return web.Response(
            status=200 if healthy else 503,
            text=json.dumps(body),
            content_type="application/json",
        )

    async def _metrics(self, _request: web.BaseRequest) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response
