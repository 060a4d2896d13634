"""Evaluating a parsed query against the occurrences of its words and phrases.

Pure. An occurrence is (field index, first word, last word), word indices
coming from `alerts.matching.text_keys.WordIndex`, so NEAR/n never spans two fields.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence

from alerts.matching.query_parser import And, Atom, Near, Not, Or, QueryNode

Occurrence = tuple[int, int, int]  # field index, first word, last word

__all__ = ["Occurrence", "holds", "near", "occurrences"]


def holds(node: QueryNode, atoms: Mapping[str, Sequence[Occurrence]]) -> bool:
    """Whether the query is true, given where each of its atoms occurs."""
    if isinstance(node, Atom):
        return bool(atoms.get(node.text))
    if isinstance(node, And):
        return all(holds(child, atoms) for child in node.operands)
    if isinstance(node, Or):
        return any(holds(child, atoms) for child in node.operands)
    if isinstance(node, Not):
        return not holds(node.operand, atoms)
    return bool(occurrences(node, atoms))


def occurrences(node: QueryNode, atoms: Mapping[str, Sequence[Occurrence]]) -> list[Occurrence]:
    """Where a word, phrase, OR group or NEAR group occurs (the parser allows no other)."""
    if isinstance(node, Atom):
        return list(atoms.get(node.text, ()))
    if isinstance(node, Or):
        return [occ for child in node.operands for occ in occurrences(child, atoms)]
    if isinstance(node, Near):
        left = occurrences(node.left, atoms)
        right = occurrences(node.right, atoms)
        return near(left, right, node.distance) if left and right else []
    raise TypeError(f"no positions for {type(node).__name__}")  # refused by the parser


def near(left: Sequence[Occurrence], right: Sequence[Occurrence], n: int) -> list[Occurrence]:
    """Spans covering each pair (one from each side) with at most `n` words between.

    Overlapping or adjacent occurrences count as near. Sorted bisection keeps
    this close to linear for long documents with many occurrences.
    """
    ordered = sorted(right)
    longest = max(last - first for _, first, last in ordered)
    out: list[Occurrence] = []
    for fi, first, last in left:
        lo = bisect_left(ordered, (fi, first - n - 1 - longest, -1))
        hi = bisect_right(ordered, (fi, last + n + 1, 1 << 62))
        for _, r_first, r_last in ordered[lo:hi]:
            gap = max(r_first - last, first - r_last) - 1
            if gap <= n:
                out.append((fi, min(first, r_first), max(last, r_last)))
    return out
