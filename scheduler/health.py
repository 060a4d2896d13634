"""`GET /healthz` and `GET /metrics` on the daemon's own event loop (aiohttp.web).

/healthz answers 200 only when the scheduler runs (not stopping) AND the
database answers a `SELECT 1` now; otherwise 503, with a JSON body saying
which part is wrong, so a load balancer or orchestrator takes the replica out
or restarts it. The database probe runs in a worker thread (the driver is
synchronous) under a short timeout, and concurrent probes share one in-flight
check, so a scrape storm during an outage cannot pile up threads.

/metrics never touches the database: it renders counters that the jobs keep.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from aiohttp import web
from sqlalchemy import Engine

from scheduler.metrics import CONTENT_TYPE, Metrics
from storage.db import check_connection

log = logging.getLogger("newswatch.daemon")

PROBE_TIMEOUT = 3.0


class DatabaseProbe:
    """Single-flight `SELECT 1`: callers that arrive during a probe await the same one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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
            check_connection(self.engine)
        except Exception:  # any failure means "not healthy"; the jobs log the outage
            return False
        return True


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
        web_app: web.Application | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.probe = probe
        self.scheduler_running = scheduler_running
        self.metrics = metrics
        self.on_database = on_database
        self.web_app = web_app  # the web view, mounted at the root beside the probes
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Bind and serve; return the port actually bound (useful when port is 0)."""
        webapp = self.web_app if self.web_app is not None else web.Application()
        webapp.router.add_get("/healthz", self._healthz)
        webapp.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(webapp, access_log=None, handle_signals=False)
        await self._runner.setup()
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

    async def _healthz(self, _request: web.Request) -> web.Response:
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

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response
