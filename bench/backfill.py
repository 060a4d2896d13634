"""Backfill at scale, and when Hyperscan's compile time pays for itself.

1. Compile time and scan rate of each backend at 1,000, 5,000 and 10,000
   terms (bench/matching.py's generated multilingual terms and items), and
   the break-even volume: the bytes of text above which Hyperscan's longer
   compile is paid back by its faster scan,
       (compile_hs - compile_aho) / (1/rate_aho - 1/rate_hs).
2. `newswatch backfill --dry-run` (a subprocess, the real command) over
   `--items` generated stored items (SQLite, one source, ~1 KB each, one in
   twenty carrying a watched term) against a `--terms` watchlist: items/s
   and the command's peak RSS (ru_maxrss of the child), with the backend the
   command picks; plus a per-term regex baseline (one compiled regex per
   term, every item) on a sample, in the same run.

    .venv/bin/python bench/backfill.py [--items 200000] [--terms 10000]
        [--sample 300] [--mb 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from matching import SEED, make_corpus, make_pools, make_terms  # noqa: E402

from alerts.alert_records import Document, Term, Watchlist  # noqa: E402
from alerts.matching.backends import HYPERSCAN_AVAILABLE  # noqa: E402
from alerts.matching.engine import compile_watchlists  # noqa: E402

NEWSWATCH = str(Path(sys.executable).with_name("newswatch"))


def backend_costs(terms: list[str], docs: list[Document]) -> dict[str, tuple[float, float]]:
    """backend -> (compile seconds, scan bytes/s) for one term list."""
    size = sum(len(d.title.encode()) + len(d.body.encode()) for d in docs)
    out = {}
    watchlist = Watchlist("bench", tuple(Term(t) for t in terms))
    for backend in ("hyperscan", "aho") if HYPERSCAN_AVAILABLE else ("aho",):
        t0 = time.process_time()
        matcher = compile_watchlists([watchlist], backend=backend)  # type: ignore[arg-type]
        built = time.process_time() - t0
        t0 = time.process_time()
        for d in docs:
            matcher.match(d)
        out[backend] = (built, size / (time.process_time() - t0))
    return out


def break_even(costs: dict[str, tuple[float, float]]) -> float:
    """Bytes of text from which Hyperscan (compile + scan) is faster than aho."""
    (c_hs, r_hs), (c_aho, r_aho) = costs["hyperscan"], costs["aho"]
    gain = 1 / r_aho - 1 / r_hs
    return float("inf") if gain <= 0 else (c_hs - c_aho) / gain


# --- the stored items ----------------------------------------------------------------


def items(n: int, terms: list[str], rng: random.Random) -> Iterator[tuple[object, ...]]:
    pools = make_pools(rng, 3000)
    cum = []
    total = 0.0
    for i in range(len(pools["en"])):
        total += 1.0 / (i + 1)
        cum.append(total)
    when = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    for i in range(n):
        lang = ("en", "ru", "ko", "zh")[i % 4]
        words = rng.choices(pools[lang], cum_weights=cum, k=rng.randint(80, 180))
        if rng.random() < 0.05:
            words.insert(rng.randrange(len(words)), rng.choice(terms))
        sep = "" if lang == "zh" else " "
        body = sep.join(words)
        title = sep.join(words[:8])
        url = f"https://example.org/{i}"
        yield (1, url, url, title, "", body, when, when, lang, f"{i:064x}")


def fill(path: str, n: int, terms: list[str]) -> float:
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO sources (id, name, url, kind, every_seconds, enabled, "
        "consecutive_failures, created_at) VALUES (1, 'bench', 'https://example.org/feed', "
        "'feed', 900, 1, 0, ?)",
        (datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" "),),
    )
    db.executemany(
        "INSERT INTO items (source_id, url, guid, title, summary, body, published, "
        "fetched_at, language, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        items(n, terms, random.Random(SEED + 1)),
    )
    db.commit()
    query = "SELECT sum(length(CAST(title AS BLOB)) + length(CAST(body AS BLOB))) FROM items"
    mb = db.execute(query).fetchone()[0] / 1e6
    db.close()
    return float(mb)


def watchlist_file(path: Path, terms: list[str]) -> None:
    lines = ["watchlists:", "  - name: big", "    terms:"]
    lines += [f"      - term: {json.dumps(t, ensure_ascii=False)}" for t in terms]
    path.write_text("\n".join(lines) + "\n")


def per_term_rate(terms: list[str], docs: list[Document]) -> float:
    """items/s of one compiled regex per term over each item (the naive way)."""
    rxs = [re.compile(r"(?<!\w)" + re.escape(t.rstrip("*")) + r"(?!\w)", re.I) for t in terms]
    t0 = time.process_time()
    for d in docs:
        any(rx.search(d.title) or rx.search(d.body) for rx in rxs)
    return len(docs) / (time.process_time() - t0)


def run_backfill(env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s, peak RSS KB, last stdout line) of `newswatch backfill --dry-run`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [NEWSWATCH, "backfill", "-w", "big", "--since", "3650d", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"backfill failed: {done.stderr[-500:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    lines = done.stdout.strip().splitlines()
    return wall, cpu, after.ru_maxrss, lines[0] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--terms", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=300, help="items for the regex baseline")
    parser.add_argument("--mb", type=float, default=8.0, help="text for the backend rates")
    parser.add_argument("--skip-backends", action="store_true")
    args = parser.parse_args()
    rng = random.Random(SEED)
    pools = make_pools(rng)
    all_terms = make_terms(rng, pools, max(10_000, args.terms))
    if not args.skip_backends:
        docs = make_corpus(random.Random(SEED + 2), pools, all_terms[:10], args.mb)
        print(f"{'terms':>6} {'backend':<10} {'compile s':>9} {'scan MB/s':>9}  break-even")
        for n in (1_000, 5_000, 10_000):
            costs = backend_costs(all_terms[:n], docs)
            for name, (c, r) in costs.items():
                print(f"{n:>6} {name:<10} {c:9.2f} {r / 1e6:9.1f}", flush=True)
            if "hyperscan" in costs:
                print(f"{'':>6} break-even: {break_even(costs) / 1e6:.0f} MB of text", flush=True)
    terms = all_terms[: args.terms]
    with tempfile.TemporaryDirectory(prefix="nw-backfill-") as tmp:
        env = {**os.environ, "NEWSWATCH_DATABASE_URL": f"sqlite:///{tmp}/b.db"}
        subprocess.run([NEWSWATCH, "init"], env=env, check=True, capture_output=True)
        watchlist_file(Path(tmp, "w.yaml"), terms)
        subprocess.run(
            [NEWSWATCH, "watchlist", "import", f"{tmp}/w.yaml"],
            env=env,
            check=True,
            capture_output=True,
        )
        t0 = time.perf_counter()
        mb = fill(f"{tmp}/b.db", args.items, terms)
        print(
            f"{args.items} items, {mb:.0f} MB of text, stored in {time.perf_counter() - t0:.0f} s"
        )
        wall, cpu, rss_kb, line = run_backfill(env)
        rate = args.items / wall
        print(
            f"backfill --dry-run: {wall:.1f} s wall, {cpu:.1f} s CPU, {rate:.0f} items/s "
            f"({mb / wall:.1f} MB/s; {args.items / cpu:.0f} items per CPU second), "
            f"peak RSS {rss_kb / 1024:.0f} MB; {line}"
        )
        sample = [
            Document(title=t, body=b)
            for t, b in sqlite3.connect(f"{tmp}/b.db").execute(
                "SELECT title, body FROM items ORDER BY id LIMIT ?", (args.sample,)
            )
        ]
        baseline = per_term_rate(terms, sample)
        print(
            f"per-term regex baseline on {len(sample)} items: {baseline:.1f} items per CPU "
            f"second; backfill = {args.items / cpu / baseline:.0f}x (CPU), "
            f"{rate / baseline:.0f}x (backfill wall clock vs baseline CPU)"
        )


if __name__ == "__main__":
    main()
