"""Benchmark: the compiled Matcher against regex baselines, in the same run.

Generates a reproducible multilingual corpus (English-like, Russian-like,
Korean-like and Chinese-like items; fixed seed) and watchlists of 10, 1,000
and 10,000 terms (single words, phrases, capitals, `*` continuations, and
prefixes of common words so that boundary checks reject many candidates).
Reports MB/s (UTF-8 bytes of title+body) and items/s for:

- hyperscan, aho: `compile_watchlists(..., backend=...).match(doc)` over the
  whole corpus (median of `--repeat` passes), with each backend;
- prep: building the search keys alone (`FieldText` per field), the ceiling
  of any backend since every one needs them;
- alternation: one big case-insensitive regex `(?<!\\w)(?:t1|t2|...)(?!\\w)`;
- per-term: one compiled regex per term, each run over every item (the naive
  approach), only where it finishes in reasonable time.

Baselines run under a time budget over a prefix of the corpus (their speed is
steady, so the rate is representative). The last table says how each method's
cost per MB grows from 10 terms. Usage (one core: the Matcher is single-threaded):

    .venv/bin/python bench/matching.py [--mb 50] [--budget 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.alert_records import Document, Term, Watchlist
from alerts.matching.backends import HYPERSCAN_AVAILABLE
from alerts.matching.engine import compile_watchlists
from alerts.matching.text_keys import FieldText

Result = tuple[float, float, int, bool]  # MB/s, items/s, matches, whole corpus covered

SEED = 20261122
LATIN = "abcdefghijklmnopqrstuvwxyz"
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщыьэюя"
HANGUL_PARTICLES = ["은", "는", "이", "가", "을", "를", "의", "에", "에서", ""]


def _word(rng: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(rng.choices(alphabet, k=rng.randint(lo, hi)))


def _hangul(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(chr(0xAC00 + rng.randrange(11172)) for _ in range(rng.randint(lo, hi)))


def _han(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(rng.randint(lo, hi)))


def make_pools(rng: random.Random, size: int = 5000) -> dict[str, list[str]]:
    return {
        "en": [_word(rng, LATIN, 2, 10) for _ in range(size)],
        "ru": [_word(rng, CYRILLIC, 2, 11) for _ in range(size)],
        "ko": [_hangul(rng, 1, 4) for _ in range(size)],
        "zh": [_han(rng, 1, 3) for _ in range(size)],
    }


def make_terms(rng: random.Random, pools: dict[str, list[str]], n: int) -> list[str]:
    """Rare words and phrases, a tenth being prefixes of common words."""
    terms: list[str] = []
    while len(terms) < n:
        lang = rng.choice(["en", "en", "ru", "ko", "zh"])
        kind = rng.random()
        if kind < 0.1 and lang in {"en", "ru"}:
            word = rng.choice([w for w in pools[lang][:300] if len(w) >= 5])
            terms.append(word[: len(word) - 2])  # inside common words: rejected candidates
        elif lang == "en":
            word = _word(rng, LATIN, 4, 9)
            terms.append(word.upper() if kind < 0.2 else word.capitalize())
            if kind > 0.8:
                terms[-1] += " " + _word(rng, LATIN, 3, 8)
        elif lang == "ru":
            terms.append(_word(rng, CYRILLIC, 4, 9) + ("*" if kind < 0.4 else ""))
        elif lang == "ko":
            terms.append(_hangul(rng, 2, 5))
        else:
            terms.append(_han(rng, 2, 4))
    return terms


def make_corpus(
    rng: random.Random, pools: dict[str, list[str]], plants: list[str], mb: float
) -> list[Document]:
    """Items of about 3 KB; one in twenty carries a planted term."""
    docs: list[Document] = []
    size = 0
    weights = [1.0 / (i + 1) for i in range(len(pools["en"]))]  # Zipf-like
    langs = ["en", "ru", "ko", "zh"]
    while size < mb * 1_000_000:
        lang = langs[len(docs) % 4]
        words = rng.choices(pools[lang], weights=weights, k=rng.randint(250, 700))
        if lang == "ko":
            words = [w + rng.choice(HANGUL_PARTICLES) for w in words]
        if rng.random() < 0.05:
            words.insert(rng.randrange(len(words)), rng.choice(plants))
        sep = "" if lang == "zh" else " "
        body = ". ".join(sep.join(words[i : i + 15]) for i in range(0, len(words), 15))
        title = sep.join(words[:8])
        docs.append(Document(title=title, body=body, language=lang))
        size += len(title.encode()) + len(body.encode())
    return docs


def _bytes(doc: Document) -> int:
    return len(doc.title.encode()) + len(doc.body.encode())


def timed(docs: Sequence[Document], fn: Callable[[Document], int], budget: float) -> Result:
    """MB/s, items/s, matches, and whether the whole corpus was covered."""
    done = size = found = 0
    start = time.perf_counter()
    for doc in docs:
        found += fn(doc)
        done += 1
        size += _bytes(doc)
        if time.perf_counter() - start > budget:
            break
    elapsed = time.perf_counter() - start
    return size / elapsed / 1e6, done / elapsed, found, done == len(docs)


def _regex_source(term: str) -> str:
    star = term.endswith("*")
    body = r"[\s-]+".join(re.escape(w) for w in term.rstrip("*").split())
    return body + (r"\w*" if star else "")


def alternation(terms: list[str]) -> Callable[[Document], int]:
    rx = re.compile(
        r"(?<!\w)(?:" + "|".join(_regex_source(t) for t in terms) + r")(?!\w)", re.IGNORECASE
    )
    return lambda d: int(bool(rx.search(d.title) or rx.search(d.body)))


def per_term(terms: list[str]) -> Callable[[Document], int]:
    rxs = [re.compile(r"(?<!\w)" + _regex_source(t) + r"(?!\w)", re.IGNORECASE) for t in terms]
    return lambda d: int(any(rx.search(d.title) or rx.search(d.body) for rx in rxs))


def prep(doc: Document) -> int:
    """Only the search keys (normalise, fold spaces and case, encode) of each field."""
    for name in ("title", "summary", "body"):
        FieldText(name, getattr(doc, name))
    return 0


def median_of(docs: Sequence[Document], fn: Callable[[Document], int], repeat: int) -> Result:
    runs = [timed(docs, fn, budget=1e9) for _ in range(repeat)]
    mbs = statistics.median(r[0] for r in runs)
    return mbs, mbs / runs[0][0] * runs[0][1], runs[0][2], True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="corpus size in MB")
    parser.add_argument("--budget", type=float, default=4.0, help="seconds per baseline")
    parser.add_argument("--repeat", type=int, default=3, help="passes of ours (median)")
    args = parser.parse_args()
    rng = random.Random(SEED)
    pools = make_pools(rng)
    all_terms = make_terms(rng, pools, 10_000)
    t0 = time.perf_counter()
    docs = make_corpus(rng, pools, all_terms[:10], args.mb)
    total = sum(_bytes(d) for d in docs) / 1e6
    print(
        f"corpus: {len(docs)} items, {total:.1f} MB, generated in {time.perf_counter() - t0:.1f}s"
    )
    print(f"{'terms':>6} {'method':<12} {'MB/s':>8} {'items/s':>9} {'matched':>8}  note")
    _row(0, "prep", median_of(docs, prep, args.repeat), "search keys only: the ceiling")
    rates: dict[str, dict[int, float]] = {}
    for n in (10, 1_000, 10_000):
        for method, result in _measure(docs, all_terms[:n], args).items():
            rates.setdefault(method, {})[n] = result[0]
    _growth(rates)


def _measure(
    docs: Sequence[Document], terms: list[str], args: argparse.Namespace
) -> dict[str, Result]:
    """Every method on one term list; ratios are against the first backend."""
    n = len(terms)
    watchlist = Watchlist("bench", tuple(Term(t) for t in terms))
    results: dict[str, Result] = {}
    for backend in ("hyperscan", "aho") if HYPERSCAN_AVAILABLE else ("aho",):
        t0 = time.perf_counter()
        matcher = compile_watchlists([watchlist], backend=backend)
        built = time.perf_counter() - t0
        results[backend] = median_of(docs, lambda d, m=matcher: len(m.match(d)), args.repeat)
        note = f"compiled in {built:.2f}s"
        if len(results) > 1:
            note += f"; hyperscan/this = {results['hyperscan'][0] / results[backend][0]:.1f}x"
        _row(n, backend, results[backend], note)
    ours = next(iter(results.values()))[0]
    results["alternation"] = timed(docs, alternation(terms), args.budget)
    _row(
        n,
        "alternation",
        results["alternation"],
        f"ours/this = {ours / results['alternation'][0]:.0f}x",
    )
    if n <= 1_000:
        results["per-term"] = timed(docs, per_term(terms), args.budget)
        _row(
            n, "per-term", results["per-term"], f"ours/this = {ours / results['per-term'][0]:.0f}x"
        )
    return results


def _growth(rates: dict[str, dict[int, float]]) -> None:
    """Cost per MB relative to 10 terms: 1.0 is flat."""
    print("\ncost per MB relative to 10 terms (1.0 = flat)")
    print(f"{'method':<12} {'10':>8} {'1,000':>8} {'10,000':>8}")
    for method, by_n in rates.items():
        cells = [
            f"{by_n[10] / by_n[n]:>8.1f}" if n in by_n else f"{'—':>8}" for n in (10, 1_000, 10_000)
        ]
        print(f"{method:<12} {' '.join(cells)}")


def _row(n: int, method: str, result: Result, note: str) -> None:
    mbs, items, found, whole = result
    scope = "" if whole else " (time-boxed prefix)"
    print(f"{n:>6} {method:<12} {mbs:>8.2f} {items:>9.0f} {found:>8}  {note}{scope}")


if __name__ == "__main__":
    main()
