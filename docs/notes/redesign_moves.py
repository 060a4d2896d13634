"""Step 1 of docs/notes/redesign-plan.md: the moves and renames, done mechanically.

Run from the repository root on a clean tree (after the fix branches are merged):

    .venv/bin/python docs/notes/redesign_moves.py          # git mv + rewrite imports
    .venv/bin/ruff check --fix . && .venv/bin/ruff format .

It `git mv`s every module of MOVES, then rewrites every dotted module name
(`alerts.outbox` → `scheduler.deliver`, in imports, `import x.y as z`,
monkeypatch targets, docstrings, docs and pyproject.toml) in one pass over
the tree, so a name is never rewritten twice. `from pkg import module` forms
that name a moved module are rewritten too. It refuses to run twice (the
old paths must exist). `--dry-run` prints what it would do.

Delete this file in the commit that finishes the redesign.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# old path → new path; purpose in docs/notes/redesign-plan.md
MOVES: dict[str, str] = {
    "newswatch/pipeline.py": "scheduler/crawl.py",
    "newswatch/backfill.py": "scheduler/backfill.py",
    "newswatch/faults.py": "scheduler/crash_points.py",
    "alerts/outbox.py": "scheduler/deliver.py",
    "scheduler/policy.py": "scheduler/poll_policy.py",
    "alerts/matching.py": "alerts/matching/engine.py",
    "alerts/textmatch.py": "alerts/matching/text_keys.py",
    "alerts/backends.py": "alerts/matching/backends.py",
    "alerts/query.py": "alerts/matching/query_parser.py",
    "alerts/queryeval.py": "alerts/matching/query_eval.py",
    "alerts/watchlists.py": "alerts/watchlist_files.py",
    "alerts/models.py": "alerts/alert_records.py",
    "crawler/models.py": "crawler/crawl_records.py",
    "crawler/fastfeed.py": "crawler/feeds_lxml.py",
    "crawler/bodies.py": "crawler/http_bodies.py",
    "crawler/workers.py": "crawler/parse_pool.py",
    "crawler/pages.py": "crawler/listings.py",
    "web/app.py": "web/server.py",
}
NEW_PACKAGES = {
    "alerts/matching/__init__.py": '"""Matching: watchlists compiled into one automaton '
    "(engine), search keys (text_keys),\nthe Hyperscan and pyahocorasick backends, "
    'and the query parser and evaluator."""\n',
}
SUFFIXES = (".py", ".md", ".toml", ".cfg", ".ini")
SKIP = (".git", ".venv", "migrations/versions", "node_modules", ".mypy_cache")


def module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def renames() -> dict[str, str]:
    return {module(old): module(new) for old, new in MOVES.items()}


def dotted_pattern(names: dict[str, str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w.])({alternatives})(?![\w])")


FROM_IMPORT = re.compile(r"^(\s*)from (\w+) import ([^\n(]+)$", re.MULTILINE)


def rewrite_from_imports(text: str, names: dict[str, str]) -> str:
    """`from alerts import models` → `from alerts import alert_records as models`."""

    def fix(m: re.Match[str]) -> str:
        indent, package, imported = m.groups()
        parts = [p.strip() for p in imported.split(",")]
        moved = [p for p in parts if f"{package}.{p.split(' as ')[0]}" in names]
        if not moved:
            return m.group(0)
        lines = []
        kept = [p for p in parts if p not in moved]
        if kept:
            lines.append(f"{indent}from {package} import {', '.join(kept)}")
        for p in moved:
            name, _, alias = p.partition(" as ")
            new = names[f"{package}.{name}"]
            parent, _, leaf = new.rpartition(".")
            lines.append(f"{indent}from {parent} import {leaf} as {alias or name}")
        return "\n".join(lines)

    return FROM_IMPORT.sub(fix, text)


def files(root: Path) -> list[Path]:
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and p.suffix in SUFFIXES and not any(s in rel for s in SKIP):
            out.append(p)
    return out


def main(argv: list[str]) -> int:
    dry = "--dry-run" in argv
    root = Path.cwd()
    missing = [old for old in MOVES if not (root / old).exists()]
    if missing:
        print(f"refusing: {missing[0]} does not exist (already moved?)", file=sys.stderr)
        return 1
    names = renames()
    pattern = dotted_pattern(names)
    for old, new in MOVES.items():
        print(f"git mv {old} {new}")
        if not dry:
            (root / new).parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "mv", old, new], check=True)  # noqa: S603,S607
    for path, text in NEW_PACKAGES.items():
        print(f"create {path}")
        if not dry:
            (root / path).write_text(text)
            subprocess.run(["git", "add", path], check=True)  # noqa: S603,S607
    changed = 0
    for f in files(root):
        if f.resolve() == Path(__file__).resolve():
            continue
        text = f.read_text()
        new_text = rewrite_from_imports(text, names) if f.suffix == ".py" else text
        new_text = pattern.sub(lambda m: names[m.group(1)], new_text)
        if new_text != text:
            changed += 1
            print(f"rewrite {f.relative_to(root)}")
            if not dry:
                f.write_text(new_text)
    print(f"{len(MOVES)} modules moved, {changed} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
