"""Handlers of the web view's pages and APIs.

Every database call runs in a worker thread (the driver is synchronous), so
the daemon's event loop keeps polling while a page is read. The threads are
the web view's own (`READ_THREADS`), not the loop's default executor: a burst
of page views on a slow database cannot starve the /healthz probe, which
runs there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import jinja2
from aiohttp import web

from alerts.render import match_object
from storage.views import Cursor, MatchFilter, MatchGroup, WebReader
from web import security
from web.chart import line_chart
from web.params import (
    TREND_DAYS,
    BadParameter,
    cursor,
    cursor_text,
    match_filter,
    number,
    page_size,
    parse_since,
    text_field,
    trend_days,
)

READ_THREADS = 4
T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """What the handlers share: the reader, the clock, the token, the templates,
    and the threads that read."""

    reader: WebReader
    clock: Callable[[], datetime]
    token: str | None
    templates: jinja2.Environment
    threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(READ_THREADS, thread_name_prefix="web-read")
    )


async def _read(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    pool = request.app[CONTEXT].threads
    return await asyncio.get_running_loop().run_in_executor(pool, partial(fn, *args))


async def close_threads(app: web.Application) -> None:
    app[CONTEXT].threads.shutdown(wait=False, cancel_futures=True)


CONTEXT = web.AppKey("newswatch_web", Context)
MAX_TREND_TERMS = 24
ALERTS_SHOWN = 200
COOKIE_MAX_AGE = 30 * 86400


def group_href(group: MatchGroup) -> str:
    """Where a group's page lives: its story's, or the item's while it has none."""
    if group.story_id is not None:
        return f"/stories/{group.story_id}"
    return f"/items/{group.key}"


def render(request: web.Request, name: str, *, status: int = 200, **context: Any) -> web.Response:
    ctx = request.app[CONTEXT]
    context.setdefault("path", request.path)
    context.setdefault("login_required", bool(ctx.token))
    html = ctx.templates.get_template(name).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def _reader(request: web.Request) -> WebReader:
    return request.app[CONTEXT].reader


def _now(request: web.Request) -> datetime:
    return request.app[CONTEXT].clock()


async def index(request: web.Request) -> web.Response:
    reader = _reader(request)
    choices = await _read(request, reader.filter_choices)
    try:
        f = match_filter(request.query, _now(request))
    except BadParameter as e:
        return render(request, "index.html", status=400, groups=[], choices=choices,
                      q=request.query, error=str(e))  # fmt: skip
    groups = await _read(request, reader.match_groups, f)
    return render(request, "index.html", groups=groups, choices=choices, q=request.query,
                  error=None)  # fmt: skip


async def story_page(request: web.Request) -> web.Response:
    key = number(request.match_info["key"])
    group = None if key is None else await _read(request, _reader(request).story_page, key)
    if group is None:
        return render(request, "missing.html", status=404, message="No such story.")
    return render(request, "story.html", group=group)


async def item_page(request: web.Request) -> web.Response:
    """An item in a story redirects to the story's page (old links keep
    working); an item the story step has not reached is shown alone."""
    key = number(request.match_info["key"])
    found = None if key is None else await _read(request, _reader(request).item_page, key)
    if found is None:
        return render(request, "missing.html", status=404, message="No such item.")
    if isinstance(found, int):
        raise web.HTTPFound(f"/stories/{found}")
    return render(request, "story.html", group=found)


async def trends(request: web.Request) -> web.Response:
    try:
        days = trend_days(request.query)
        watchlist = text_field(request.query, "watchlist")
    except BadParameter as e:
        return render(request, "missing.html", status=400, message=str(e))
    reader = _reader(request)
    choices = await _read(request, reader.filter_choices)
    series = await _read(request, reader.trends, _now(request), days, watchlist)
    charts = [
        (s, line_chart(f"{s.term}: mentions per day, by language", s.days, s.by_language))
        for s in series[:MAX_TREND_TERMS]
    ]
    more = max(0, len(series) - len(charts))
    return render(request, "trends.html", charts=charts, days=days, all_days=TREND_DAYS,
                  watchlist=watchlist, choices=choices, more=more)  # fmt: skip


async def sources(request: web.Request) -> web.Response:
    health = await _read(request, _reader(request).source_health)
    return render(request, "sources.html", sources=health, failing=sum(s.failing for s in health))


async def alerts(request: web.Request) -> web.Response:
    reader = _reader(request)
    failed = await _read(request, reader.alerts, "failed", ALERTS_SHOWN)
    pending = await _read(request, reader.alerts, "pending", ALERTS_SHOWN)
    cancelled = await _read(request, reader.alerts, "cancelled", ALERTS_SHOWN)
    return render(request, "alerts.html", failed=failed, pending=pending, cancelled=cancelled,
                  shown=ALERTS_SHOWN)  # fmt: skip


def _compact(value: Any) -> str:
    """JSON without padding or `\\uXXXX` escapes of non-ASCII text (UTF-8 on
    the wire): feed text is mostly not ASCII, and its escapes are 2-3 times
    the size of its UTF-8. Stored text holds no lone surrogates (neither
    database stores them), so the UTF-8 encoding cannot fail."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_page(
    request: web.Request, objects: list[Any], size: int, last: Cursor | None
) -> web.Response:
    """One JSON array; when the page is full, a `Link: <…>; rel="next"` header
    whose URL is this one with the `cursor` of the last object served."""
    response = web.json_response(objects, dumps=_compact)
    if last is not None and len(objects) >= size:
        url = request.rel_url.update_query(cursor=cursor_text(*last))
        response.headers["Link"] = f'<{url}>; rel="next"'
    return response


async def api_matches(request: web.Request) -> web.Response:
    """The `matches --json` objects (same converter), newest first, as one array
    of at most API_PAGE; the next page's URL is in the `Link` header."""
    try:
        f: MatchFilter = match_filter(request.query, _now(request))
        f = replace(f, before=cursor(request.query))
        n = page_size(request.query)
    except BadParameter as e:
        return web.json_response({"error": str(e)}, status=400)
    found = await _read(request, _reader(request).matches, f, n)
    last = (found[-1].matched_at, found[-1].id) if found else None
    return _json_page(request, [match_object(m) for m in found], n, last)


async def api_stories(request: web.Request) -> web.Response:
    """The `stories --json` objects (`StoryView.as_json`, the same converter),
    newest first, as one array of at most API_PAGE; `watchlist`, `since`,
    `limit` as the CLI's options; the next page's URL is in the `Link` header."""
    try:
        watchlist = text_field(request.query, "watchlist")
        since_text = text_field(request.query, "since")
        since = parse_since(since_text, _now(request)) if since_text else None
        n = page_size(request.query)
        before = cursor(request.query)
    except BadParameter as e:
        return web.json_response({"error": str(e)}, status=400)
    found = await _read(request, _reader(request).stories, watchlist, since, n, before)
    last = (found[-1].last_seen, found[-1].id) if found else None
    return _json_page(request, [story.as_json() for story in found], n, last)


async def login_form(request: web.Request) -> web.Response:
    nxt = security.local_path(request.query.get("next"))
    return render(request, "login.html", next=nxt, error=None)


async def login(request: web.Request) -> web.StreamResponse:
    """The only state change: on the right token, set the session cookie."""
    if not security.same_origin(request.headers.get("Origin"), request.host):
        return render(request, "login.html", status=403, next="/", error="cross-site login refused")
    form = await request.post()
    given, nxt = form.get("token"), security.local_path(str(form.get("next", "/")))
    token = request.app[CONTEXT].token
    if not token or not isinstance(given, str) or not security.same_secret(given, token):
        return render(request, "login.html", status=401, next=nxt, error="wrong token")
    response = web.HTTPSeeOther(nxt)
    response.set_cookie(
        security.COOKIE,
        security.session_value(token),
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    if not security.same_origin(request.headers.get("Origin"), request.host):
        raise web.HTTPForbidden(text="cross-site request refused")
    response = web.HTTPSeeOther("/login")
    response.del_cookie(security.COOKIE, path="/")
    raise response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/stories/{key}", story_page)
    app.router.add_get("/items/{key}", item_page)
    app.router.add_get("/trends", trends)
    app.router.add_get("/sources", sources)
    app.router.add_get("/alerts", alerts)
    app.router.add_get("/api/matches", api_matches)
    app.router.add_get("/api/stories", api_stories)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
