"""What every command module shares: the App from the context, output helpers."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TextIO

import typer

from newswatch.app import App, build_app
from newswatch.config import Settings, load_settings
from newswatch.logs import dumps

# True when the CLI runs as the `newswatch` process itself (not in-process in a
# test): handlers installed for the life of the process are then safe.
OWN_PROCESS = False


class UsageProblem(Exception):
    """Bad input from the user; printed as one line, exit status 2."""


def get_app(ctx: typer.Context) -> App:
    state: dict[str, Any] = ctx.ensure_object(dict)
    if "app" not in state:
        settings: Settings = state.get("settings") or load_settings(state.get("config"))
        state["app"] = build_app(settings)
        ctx.call_on_close(state["app"].close)
    app: App = state["app"]
    return app


def to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def print_jsonl(rows: Iterable[Mapping[str, Any]]) -> None:
    """JSON Lines; non-printable characters escaped even inside strings (a raw
    C1 CSI or U+2028 would act on a terminal or split a line)."""
    out = sys.stdout
    for row in rows:
        out.write(dumps(to_json(row)) + "\n")
    out.flush()


def printable(text: object) -> str:
    """`text` safe to show on a terminal: every non-printable character (C0
    and C1 controls such as ESC, BEL and CSI, DEL, bidi overrides, line
    separators) as a visible escape like `\\x1b`. Feed titles, reason
    phrases and URLs are hostile; everything printed passes through here."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)


def echo(text: object = "", *, file: TextIO | None = None) -> None:
    """`print` for one line of output that may hold feed text."""
    print(printable(text), file=file or sys.stdout)


def iso(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M") if dt else "-"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A readable table: rich on a terminal, plain aligned columns in a pipe."""
    rows = [[printable(c) for c in r] for r in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(*headers, show_lines=False)
        for r in rows:
            table.add_row(*(Text(c) for c in r))  # Text: feed text is never read as markup
        Console().print(table)
        return
    widths = [
        max(width(h), *(width(r[i]) for r in rows)) if rows else width(h)
        for i, h in enumerate(headers)
    ]
    print("  ".join(pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in rows:
        print("  ".join(pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip())


def width(text: str) -> int:
    """Terminal columns of `text`: East Asian wide and fullwidth characters
    (Hangul, CJK ideographs, kana) take two, combining marks none. Pure."""
    import unicodedata

    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return printable(flat)
