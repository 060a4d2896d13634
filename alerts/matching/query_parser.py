"""Parser for watchlist `query:` rules.

Grammar (operators are case-insensitive: `AND`, `and` and `And` are the same;
quote a word, as in `"and"`, to search for it)::

    query    := or_expr
    or_expr  := and_expr ( OR and_expr )*
    and_expr := not_expr ( [AND] not_expr )*        juxtaposition means AND
    not_expr := NOT not_expr | near_expr
    near_expr:= primary ( NEAR/n primary )*
    primary  := WORD | "PHRASE" | ( or_expr )

Precedence, tightest first: NEAR/n, NOT, AND (explicit or implicit), OR. NEAR
binds tightest so that `NOT Pantsir NEAR/3 Syria` reads as
`NOT (Pantsir NEAR/3 Syria)`; its operands are words, phrases or
parenthesised groups made of words, phrases, OR and NEAR (an AND or NOT inside
NEAR has no position, so it is refused). `a NEAR/n b` holds when at most n
words stand between an occurrence of a and one of b, in either order, in the
same field.

A query must contain at least one word or phrase that is not negated: a query
made only of NOT would match every item. Every error is a `QuerySyntaxError`
whose message is one line ending in the 1-based column it refers to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from alerts import AlertError

__all__ = [
    "And",
    "Atom",
    "Near",
    "Not",
    "Or",
    "QueryNode",
    "QuerySyntaxError",
    "parse_query",
    "positive_atoms",
    "query_atoms",
]


class QuerySyntaxError(AlertError):
    """A `query:` rule that cannot be parsed; `column` is 1-based (0 when not known)."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True, slots=True)
class Atom:
    """A word or a quoted phrase, as written (without the quotes)."""

    text: str
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[QueryNode, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[QueryNode, ...]


@dataclass(frozen=True, slots=True)
class Not:
    operand: QueryNode


@dataclass(frozen=True, slots=True)
class Near:
    """Both operands occur with at most `distance` words between them."""

    left: QueryNode
    right: QueryNode
    distance: int


QueryNode = Atom | And | Or | Not | Near


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "phrase", "(", ")", "AND", "OR", "NOT", "NEAR", "END"
    text: str
    column: int  # 1-based
    distance: int = 0


_TOKEN_RE = re.compile(r'\s+|(?P<paren>[()])|(?P<quote>")|(?P<word>[^\s()"]+)')
_NEAR_RE = re.compile(r"NEAR(?:/(\d+))?$", re.IGNORECASE)
_KEYWORDS = {"AND", "OR", "NOT"}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        assert m is not None  # the alternatives cover every character
        column = pos + 1
        if m.group("paren"):
            tokens.append(_Token(m.group("paren"), m.group("paren"), column))
        elif m.group("quote"):
            close = text.find('"', pos + 1)
            if close < 0:
                raise QuerySyntaxError(
                    f'unterminated phrase (missing closing ") at column {column}', column
                )
            phrase = text[pos + 1 : close]
            if not phrase.strip():
                raise QuerySyntaxError(f"empty phrase at column {column}", column)
            tokens.append(_Token("phrase", phrase.strip(), column))
            pos = close + 1
            continue
        elif m.group("word"):
            tokens.append(_word_token(m.group("word"), column))
        pos = m.end()
    tokens.append(_Token("END", "", len(text) + 1))
    return tokens


def _word_token(word: str, column: int) -> _Token:
    upper = word.upper()
    if upper in _KEYWORDS:
        return _Token(upper, word, column)
    if upper.startswith("NEAR") and (upper == "NEAR" or upper.startswith("NEAR/")):
        m = _NEAR_RE.match(word)
        if m is None or m.group(1) is None:
            raise QuerySyntaxError(f"NEAR needs a number, as in NEAR/5, at column {column}", column)
        return _Token("NEAR", word, column, int(m.group(1)))
    return _Token("word", word, column)


class _Parser:
    """Recursive descent over the token list; one method per grammar level."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> QueryNode:
        if self.current.kind == "END":
            raise QuerySyntaxError("empty query at column 1", 1)
        node = self.or_expr(None)
        token = self.current
        if token.kind == ")":
            raise QuerySyntaxError(f"unbalanced parenthesis at column {token.column}", token.column)
        if token.kind != "END":  # pragma: no cover - every other token continues an and_expr
            raise QuerySyntaxError(f"unexpected {token.text!r} at column {token.column}")
        return node

    def or_expr(self, after: _Token | None) -> QueryNode:
        operands = [self.and_expr(after)]
        while self.current.kind == "OR":
            operands.append(self.and_expr(self.advance()))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self, after: _Token | None) -> QueryNode:
        operands = [self.not_expr(after)]
        while self.current.kind in {"AND", "NOT", "word", "phrase", "("}:
            after = self.advance() if self.current.kind == "AND" else None
            operands.append(self.not_expr(after))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self, after: _Token | None) -> QueryNode:
        if self.current.kind == "NOT":
            token = self.advance()
            return Not(self.not_expr(token))
        return self.near_expr(after)

    def near_expr(self, after: _Token | None) -> QueryNode:
        node = self.primary(after)
        while self.current.kind == "NEAR":
            token = self.advance()
            right = self.primary(token)
            _check_near_operand(node, token)
            _check_near_operand(right, token)
            node = Near(node, right, token.distance)
        return node

    def primary(self, after: _Token | None) -> QueryNode:
        token = self.current
        if token.kind in {"word", "phrase"}:
            self.advance()
            return Atom(token.text, phrase=token.kind == "phrase")
        if token.kind == "(":
            self.advance()
            if self.current.kind == ")":
                column = self.current.column
                raise QuerySyntaxError(f"empty parentheses at column {column}", column)
            node = self.or_expr(None)
            if self.current.kind != ")":
                raise QuerySyntaxError(
                    f"unbalanced parenthesis at column {token.column}", token.column
                )
            self.advance()
            return node
        raise _expected(token, after)


def _expected(token: _Token, after: _Token | None) -> QuerySyntaxError:
    where = f"after {after.text.upper()} " if after is not None else ""
    if token.kind == ")" and after is None:
        return QuerySyntaxError(f"unbalanced parenthesis at column {token.column}", token.column)
    return QuerySyntaxError(
        f"expected a word or phrase {where}at column {token.column}", token.column
    )


def _check_near_operand(node: QueryNode, token: _Token) -> None:
    if isinstance(node, And | Not):
        raise QuerySyntaxError(
            f"NEAR takes words, phrases, OR or NEAR groups, not AND or NOT, "
            f"at column {token.column}",
            token.column,
        )
    if isinstance(node, Or | Near):
        children = node.operands if isinstance(node, Or) else (node.left, node.right)
        for child in children:
            _check_near_operand(child, token)


def parse_query(text: str) -> QueryNode:
    """Parse a `query:` rule into an immutable tree, or raise `QuerySyntaxError`."""
    node = _Parser(_tokenize(text)).parse()
    if not _positive_atoms(node, negated=False):
        raise QuerySyntaxError(
            "a query needs at least one word or phrase outside NOT at column 1", 1
        )
    return node


def _positive_atoms(node: QueryNode, *, negated: bool) -> list[Atom]:
    if isinstance(node, Atom):
        return [] if negated else [node]
    if isinstance(node, Not):
        return _positive_atoms(node.operand, negated=not negated)
    children = node.operands if isinstance(node, And | Or) else (node.left, node.right)
    return [a for child in children for a in _positive_atoms(child, negated=negated)]


def positive_atoms(node: QueryNode) -> list[str]:
    """The words and phrases whose presence can make the query true (not under NOT)."""
    return _unique(a.text for a in _positive_atoms(node, negated=False))


def query_atoms(node: QueryNode) -> list[str]:
    """Every word and phrase of the query, once each, in order of first appearance."""
    return _unique(a.text for a in _all_atoms(node))


def _all_atoms(node: QueryNode) -> list[Atom]:
    if isinstance(node, Atom):
        return [node]
    if isinstance(node, Not):
        return _all_atoms(node.operand)
    children = node.operands if isinstance(node, And | Or) else (node.left, node.right)
    return [a for child in children for a in _all_atoms(child)]


def _unique(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(texts))
