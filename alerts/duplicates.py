"""Duplicate spellings in one watchlist: a warning, not an error. Pure.

Two spellings are duplicates when the matcher cannot tell them apart: the
same search key, case rule and boundary flags (`alerts.matching.backends.spelling_key`),
so `SAM` and `ＳＡＭ`, or `Pantsir` and `pantsir`, are one spelling. A match
is then reported under whichever rule comes first, which is rarely what the
author meant.
"""

from __future__ import annotations

from alerts import AlertError
from alerts.alert_records import Term, Watchlist
from alerts.matching.backends import spelling_key


def duplicate_spellings(wl: Watchlist) -> list[str]:
    """One line per spelling that appears a second time in `wl`'s terms."""
    seen: dict[tuple[str, str | None, int], str] = {}
    out: list[str] = []
    for rule in wl.rules:
        if not isinstance(rule, Term):
            continue
        for spelling, case in rule.spellings():
            try:
                key = spelling_key(spelling, case)
            except AlertError:
                continue  # the parser refuses it with its own message
            where = f"{spelling!r} of term {rule.term!r}"
            if key in seen:
                out.append(
                    f"watchlist {wl.name!r}: {where} duplicates {seen[key]}; "
                    "its matches are reported under the first"
                )
            else:
                seen[key] = where
    return out
