"""The `query:` parser: precedence, implicit AND, and clear errors with columns."""

from __future__ import annotations

import pytest

from alerts import AlertError
from alerts.matching.query_parser import (
    And,
    Atom,
    Near,
    Not,
    Or,
    QuerySyntaxError,
    parse_query,
    positive_atoms,
    query_atoms,
)


def test_contract_example() -> None:
    node = parse_query('Pantsir AND ("North Korea" OR DPRK)')
    assert node == And((Atom("Pantsir"), Or((Atom("North Korea", phrase=True), Atom("DPRK")))))


def test_and_binds_tighter_than_or() -> None:
    assert parse_query("a AND b OR c") == Or((And((Atom("a"), Atom("b"))), Atom("c")))
    assert parse_query("a OR b AND c") == Or((Atom("a"), And((Atom("b"), Atom("c")))))


def test_juxtaposition_is_and() -> None:
    assert parse_query('a "b c"') == And((Atom("a"), Atom("b c", phrase=True)))


def test_near_binds_tighter_than_not() -> None:
    assert parse_query("x NOT a NEAR/3 b") == And((Atom("x"), Not(Near(Atom("a"), Atom("b"), 3))))


def test_not_binds_tighter_than_and() -> None:
    assert parse_query("a AND NOT b c") == And((Atom("a"), Not(Atom("b")), Atom("c")))


def test_operators_are_case_insensitive_and_quoting_makes_a_word() -> None:
    assert parse_query("a and b or c") == parse_query("a AND b OR c")
    assert parse_query('a "and" b') == And((Atom("a"), Atom("and", phrase=True), Atom("b")))


def test_near_over_or_group() -> None:
    node = parse_query("(Pantsir OR Панцир*) near/5 Syria")
    assert node == Near(Or((Atom("Pantsir"), Atom("Панцир*"))), Atom("Syria"), 5)


def test_atoms_in_order_of_first_appearance() -> None:
    node = parse_query('b AND NOT a OR (b "c d")')
    assert query_atoms(node) == ["b", "a", "c d"]
    assert positive_atoms(node) == ["b", "c d"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(Pantsir OR DPRK", "unbalanced parenthesis at column 1"),
        ("Pantsir OR DPRK)", "unbalanced parenthesis at column 16"),
        ("Pantsir AND", "expected a word or phrase after AND at column 12"),
        ("Pantsir AND OR DPRK", "expected a word or phrase after AND at column 13"),
        ("OR DPRK", "expected a word or phrase at column 1"),
        ("Pantsir NEAR DPRK", "NEAR needs a number, as in NEAR/5, at column 9"),
        ("Pantsir NEAR/x DPRK", "NEAR needs a number, as in NEAR/5, at column 9"),
        ('Pantsir "North Korea', 'unterminated phrase (missing closing ") at column 9'),
        ('Pantsir ""', "empty phrase at column 9"),
        ("", "empty query at column 1"),
        ("a ()", "empty parentheses at column 4"),
        ("NOT Samsung", "a query needs at least one word or phrase outside NOT at column 1"),
        ("(a AND b) NEAR/2 c", "NEAR takes words, phrases, OR or NEAR groups"),
        ("a NEAR/2 NOT b", "expected a word or phrase after NEAR/2 at column 10"),
    ],
)
def test_errors_are_one_line_with_a_column(text: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, AlertError)
    assert info.value.column >= 1
