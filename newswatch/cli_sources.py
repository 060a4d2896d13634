"""`newswatch source …`"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from crawler.crawl_records import Source
from newswatch.cli_common import (
    UsageProblem,
    echo,
    get_app,
    iso,
    one_line,
    print_jsonl,
    print_table,
)
from newswatch.durations import format_duration, parse_every
from newswatch.intervals import effective_interval
from newswatch.sourcefiles import (
    SourceFileError,
    SourceSpec,
    check_kind,
    check_links,
    check_name,
    check_spider,
    check_url,
    dump_opml,
    dump_yaml,
    name_from_url,
    opml_sources,
    parse_yaml,
    spider_url,
)
from storage import source_edits
from storage import sources as repo

app = typer.Typer(no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The URL; for --kind spider, the NAME.")],
    name: Annotated[str | None, typer.Option(help="Name (default: from the URL).")] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="feed, page, sitemap or spider (default: feed or page, detected)."),
    ] = None,
    every: Annotated[
        str, typer.Option(help="Polling interval with a unit, e.g. 90s, 15m, 1h.")
    ] = "15m",
    links: Annotated[str | None, typer.Option(help="CSS selector for article links.")] = None,
    spider: Annotated[
        str | None,
        typer.Option(help="--kind spider: module:Class or path/to/file.py:Class."),
    ] = None,
    spider_start: Annotated[
        str | None, typer.Option("--url", help="--kind spider: a URL passed to the spider.")
    ] = None,
    alert_backlog: Annotated[
        bool,
        typer.Option(
            "--alert-backlog",
            help="Alert on every item of the first poll, not only the recent ones.",
        ),
    ] = False,
) -> None:
    """Add a source: a feed, an HTML page whose article links are followed, a
    sitemap, or a Scrapy spider (without --spider: fed from outside, never polled)."""
    try:
        kind = check_kind(kind)
        seconds = parse_every(every)
        links = check_links(links)
        spider = resolve_spider(check_spider(spider, kind))
        if kind == "spider":
            name = check_name(name or url)
            url = spider_url(name, spider_start)
        else:
            if spider_start is not None:
                raise SourceFileError("--url is only for sources of kind spider")
            url = check_url(url)
            name = check_name(name or name_from_url(url))
    except (SourceFileError, ValueError) as e:
        raise UsageProblem(str(e)) from e
    a = get_app(ctx)
    note = ""
    if kind is None:
        kind, url, note = _detect(a, url)
    with a.session() as s:
        _warn_same_url(s, name, url)
        src = repo.add_source(
            s,
            name=name,
            url=url,
            kind=kind,  # type: ignore[arg-type]
            every_seconds=seconds,
            links_css=links,
            now=a.now(),
            spider=spider,
            alert_backlog=alert_backlog,
        )
    if src.kind == "spider":
        note = f" {src.spider}" if src.spider else " (fed from outside by a Scrapy project)"
    echo(
        f"added {src.name} ({src.kind or 'kind detected at first poll'}) {shown_url(src.url)}{note}"
    )


def resolve_spider(spec: str | None, base: Path | None = None) -> str | None:
    """A checked spider spec with its file made absolute, a relative path taken
    from `base` (the directory of the file that names it; None: this shell's
    working directory), since the daemon's cwd may be anything; a file that
    does not exist is refused now. `module:Class` is kept as written."""
    if spec is None:
        return None
    where, _, cls = spec.rpartition(":")
    if not where.endswith(".py"):
        return spec
    path = Path(where).expanduser()
    path = (path if path.is_absolute() else (base or Path.cwd()) / path).resolve()
    if not path.is_file():
        shown = where if str(path) == where else f"{where} ({path})"
        raise SourceFileError(f"no spider file {shown}")
    return f"{path}:{cls}"


def _resolve_spiders(file: Path, specs: list[SourceSpec]) -> list[SourceSpec]:
    """The specs of `file` with their spider files made absolute from the file's directory."""
    base = file.expanduser().resolve().parent
    out = []
    for spec in specs:
        try:
            out.append(replace(spec, spider=resolve_spider(spec.spider, base)))
        except SourceFileError as e:
            raise UsageProblem(f"{file}: source {spec.name!r}: {e}") from e
    return out


def _detect(a: object, url: str) -> tuple[str | None, str, str]:
    """Find out the kind now; when the source cannot be reached, leave it to the first poll."""
    from crawler import CrawlError
    from newswatch.app import App

    assert isinstance(a, App)
    try:
        from crawler.detect import detect_kind
    except ImportError:  # pragma: no cover - crawler not installed
        return None, url, ""

    async def run() -> tuple[str | None, str, str]:
        async with a.http_client() as client:
            found = await detect_kind(client, url)
        note = f" (feed advertised by {shown_url(url)})" if found.url != url else ""
        return found.kind, found.url, note

    try:
        return asyncio.run(run())
    except Exception as e:
        # Whatever the page does to detection (a bug included), the source is
        # still added: its first poll detects the kind and contains any error.
        reason = str(e) if isinstance(e, CrawlError) else f"{type(e).__name__}: {e}"
        echo(
            f"newswatch: warning: could not detect the kind now: {one_line(reason)}",
            file=sys.stderr,
        )
        return None, url, ""


@app.command("list")
def list_(
    ctx: typer.Context,
    tag: Annotated[str | None, typer.Option(help="Only sources with this tag (folder).")] = None,
    json: Annotated[bool, typer.Option("--json", help="JSON Lines.", metavar="")] = False,
) -> None:
    """Sources with their state: interval in force and why, next poll, tags, last error."""
    a = get_app(ctx)
    with a.session() as s:
        sources = repo.list_sources(s)
        tags = source_edits.tags_by_name(s)
    if tag is not None:
        sources = [x for x in sources if tag.strip().casefold() in _folded(tags.get(x.name, ()))]
    cap = a.settings.max_interval
    if json:
        print_jsonl({**_json_row(x, cap), "tags": list(tags.get(x.name, ()))} for x in sources)
        return
    print_table(
        HEADERS,
        [
            [
                x.name,
                x.kind or "?",
                format_duration(x.every_seconds),
                _duration(effective_interval(x, max_interval=cap).seconds),
                effective_interval(x, max_interval=cap).reason,
                iso(x.next_poll_at) if x.enabled else "-",
                str(x.items_count),
                iso(x.last_success_at),
                str(x.consecutive_failures),
                one_line(x.last_error or "-", 60),
                one_line(", ".join(tags.get(x.name, ())) or "-", 40),
                shown_url(x.url),
            ]
            for x in sources
        ],
    )


HEADERS = [
    *("name", "kind", "every", "in force", "why", "next poll", "items", "last success"),
    *("failures", "last error", "tags", "url"),
]


def _folded(tags: tuple[str, ...]) -> set[str]:
    return {t.casefold() for t in tags}


def _duration(seconds: int | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _json_row(x: Source, cap: int) -> dict[str, object]:
    eff = effective_interval(x, max_interval=cap)
    return {
        "name": x.name,
        "url": shown_url(x.url),
        "kind": x.kind,
        "every": format_duration(x.every_seconds),
        "interval": _duration(eff.seconds),
        "interval_reason": eff.reason,
        "links": x.links_css,
        "spider": x.spider,
        "enabled": x.enabled,
        "last_success": x.last_success_at,
        "last_polled": x.last_polled_at,
        "next_poll": x.next_poll_at,
        "last_error": x.last_error,
        "consecutive_failures": x.consecutive_failures,
        "items": x.items_count,
    }


def shown_url(url: str) -> str:
    """A source URL as listings print it: a password in it (a private feed's
    basic auth) masked, `https://user:***@host/feed`. `export` keeps it."""
    from alerts.secrets import mask_url_password

    return mask_url_password(url)


def _warn_same_url(session: object, name: str, url: str) -> None:
    """One feed under two names is polled twice and alerts twice: say so."""
    from storage.repository import AdminSession

    assert isinstance(session, AdminSession)
    name = repo.normalize_name(name)
    others = [n for n in source_edits.names_with_url(session, url) if n != name]
    if others:
        echo(
            f"newswatch: warning: {shown_url(url)} is already a source as {others[0]!r}; "
            f"adding it as {name!r} polls it twice",
            file=sys.stderr,
        )


@app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Remove a source and the items it stored that no match refers to."""
    a = get_app(ctx)
    with a.session() as s:
        repo.remove_source(s, name)
    echo(f"removed {name}")


def _read_specs(path: Path) -> tuple[list[SourceSpec], list[str]]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageProblem(f"cannot read {path}: {e.strerror}") from e
    try:
        if path.suffix.lower() in (".opml", ".xml"):
            return opml_sources(data)
        if path.suffix.lower() in (".yaml", ".yml"):
            return parse_yaml(data.decode("utf-8")), []
    except UnicodeDecodeError as e:
        raise UsageProblem(f"{path}: not UTF-8 text") from e
    except SourceFileError as e:
        raise UsageProblem(f"{path}: {e}") from e
    raise UsageProblem(f"{path}: give a .opml or .yaml file")


@app.command("import")
def import_(ctx: typer.Context, file: Path) -> None:
    """Add the sources of an OPML or YAML file; existing names are updated."""
    specs, notes = _read_specs(file)
    specs = _resolve_spiders(file, specs)
    for note in notes:
        echo(f"newswatch: warning: {file.name}: {note}", file=sys.stderr)
    a = get_app(ctx)
    added = updated = 0
    with a.session() as s:
        for spec in specs:
            _warn_same_url(s, spec.name, spec.url)
            if repo.update_source(
                s,
                spec.name,
                url=spec.url,
                kind=spec.kind,
                every_seconds=spec.every_seconds,
                links_css=spec.links_css,
                spider=spec.spider,
            ):
                source_edits.reschedule(s, spec.name, spec.every_seconds, a.now())
                updated += 1
            else:
                repo.add_source(
                    s,
                    name=spec.name,
                    url=spec.url,
                    kind=spec.kind,  # type: ignore[arg-type]
                    every_seconds=spec.every_seconds,
                    links_css=spec.links_css,
                    now=a.now(),
                    spider=spec.spider,
                )
                added += 1
            if spec.tags:
                source_edits.set_tags(s, spec.name, spec.tags)
    echo(f"imported {len(specs)} sources from {file.name}: {added} added, {updated} updated")
    for spec in specs:
        if spec.spider:
            echo(f"  {spec.name}: spider {spec.spider}")


@app.command("export")
def export(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", help="opml or yaml.")] = "opml",
) -> None:
    """Write every source as OPML 2.0 or YAML to standard output."""
    if format not in ("opml", "yaml"):
        raise UsageProblem("--format must be opml or yaml")
    a = get_app(ctx)
    with a.session() as s:
        tags = source_edits.tags_by_name(s)
        specs = [
            SourceSpec(
                x.name,
                x.url,
                x.kind,
                x.every_seconds,
                x.links_css,
                tags.get(x.name, ()),
                x.spider,
            )
            for x in repo.list_sources(s)
        ]
    sys.stdout.write(dump_opml(specs) if format == "opml" else dump_yaml(specs))


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: str,
    every: Annotated[
        str | None, typer.Option(help="New polling interval with a unit, e.g. 15m.")
    ] = None,
    new_name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    links: Annotated[
        str | None, typer.Option(help="New CSS selector for article links ('' clears it).")
    ] = None,
) -> None:
    """Change a source's interval, name or link selector; a new interval reschedules it."""
    if every is None and new_name is None and links is None:
        raise UsageProblem("nothing to change: give --every, --name or --links")
    try:
        seconds = parse_every(every) if every is not None else None
        checked_name = check_name(new_name) if new_name is not None else None
        checked_links = check_links(links) if links is not None else None
    except (SourceFileError, ValueError) as e:
        raise UsageProblem(str(e)) from e
    a = get_app(ctx)
    with a.session() as s:
        if links is not None:
            src = source_edits.edit_source(s, name, now=a.now(), links_css=checked_links)
        src = source_edits.edit_source(
            s, name, now=a.now(), every_seconds=seconds, new_name=checked_name
        )
    echo(
        f"edited {src.name}: every {format_duration(src.every_seconds)}, "
        f"next poll {iso(src.next_poll_at)} UTC"
    )


def _set_enabled(ctx: typer.Context, name: str, enabled: bool) -> None:
    a = get_app(ctx)
    with a.session() as s:
        src = source_edits.edit_source(s, name, now=a.now(), enabled=enabled)
    echo(f"{'enabled' if enabled else 'disabled'} {src.name}")


@app.command("disable")
def disable(ctx: typer.Context, name: str) -> None:
    """Stop polling a source; its items and matches stay."""
    _set_enabled(ctx, name, False)


@app.command("enable")
def enable(ctx: typer.Context, name: str) -> None:
    """Poll a disabled source again, starting now."""
    _set_enabled(ctx, name, True)
