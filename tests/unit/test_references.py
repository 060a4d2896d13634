"""`${NAME}` references in watchlists (issue #16): the rule, as properties.

A reference is the whole value, and never names newswatch's own NEWSWATCH_*
configuration (in any case); the operator may narrow it further with
NEWSWATCH_WATCHLIST_ENV. The parser refuses at import, `resolve_refs` at use.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts import AlertError
from alerts.watchlist_files import (
    WatchlistFileError,
    parse_watchlists,
    ref_problem,
    reference_allowed,
    reference_env,
    resolve_refs,
)

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
OWN = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["NEWSWATCH_", "newswatch_", "NewsWatch_", "nEWSWATCH_"]),
    st.from_regex(r"[A-Za-z0-9_]{0,20}", fullmatch=True),
)
AROUND = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


def _file(target: str, secret: str | None = None) -> str:
    entry = f"      - webhook: '{target}'\n"
    if secret is not None:
        entry += f"        secret: '{secret}'\n"
    return f"watchlists:\n  - name: w\n    terms: [SAM]\n    notify:\n{entry}"


@given(OWN)
def test_newswatch_configuration_is_never_reachable(name: str) -> None:
    env = {name: "smtp://u:SMTPPASS@mail.example.org", "NEWSWATCH_SMTP_URL": "x"}
    assert ref_problem(f"${{{name}}}") is not None
    with pytest.raises(AlertError):
        resolve_refs(f"${{{name}}}", env)
    assert not reference_allowed(name, "") and not reference_allowed(name, f"{name},*")
    assert name not in reference_env(env, "")
    for target, secret in ((f"${{{name}}}", None), ("https://example.org/h", f"${{{name}}}")):
        with pytest.raises(WatchlistFileError, match="newswatch's own configuration"):
            parse_watchlists(_file(target, secret))


@given(NAMES, AROUND, st.booleans())
def test_a_reference_is_the_whole_value(name: str, text: str, before: bool) -> None:
    value = f"{text}${{{name}}}" if before else f"${{{name}}}{text}"
    env = {name: "secret-value"}
    assert ref_problem(value) is not None
    with pytest.raises(AlertError):
        resolve_refs(value, env)


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:9/collect?smtp=${NEWSWATCH_SMTP_URL}",
        "http://127.0.0.1:9/collect?k=${AWS_SECRET_ACCESS_KEY}",
        "https://hooks.example.org/${TOKEN}",
        "http://${HOST}/x",
    ],
)
def test_parser_refuses_spliced_references(target: str) -> None:
    with pytest.raises(WatchlistFileError, match="whole value"):
        parse_watchlists(_file(target))


@pytest.mark.parametrize("secret", ["${A}${B}", " ${A}", "pre-${K}", "${K}\\n"])
def test_parser_refuses_spliced_secrets(secret: str) -> None:
    with pytest.raises(WatchlistFileError, match="whole value"):
        parse_watchlists(_file("https://example.org/h", secret))


@given(NAMES.filter(lambda n: not n.upper().startswith("NEWSWATCH_")), st.text(max_size=40))
def test_whole_value_outside_newswatch_resolves(name: str, value: str) -> None:
    assert ref_problem(f"${{{name}}}") is None
    assert resolve_refs(f"${{{name}}}", {name: value}) == value
    with pytest.raises(AlertError, match="not set"):
        resolve_refs(f"${{{name}}}", {})


@pytest.mark.parametrize(
    "allow,name,ok",
    [
        ("", "SLACK_URL", True),
        ("SLACK_URL", "SLACK_URL", True),
        ("SLACK_URL", "SLACK_URL2", False),
        ("NW_HOOK_*", "NW_HOOK_ALPHA", True),
        ("NW_HOOK_*", "AWS_SECRET_ACCESS_KEY", False),
        (" NW_A , NW_B ", "NW_B", True),
        ("*", "DATABASE_URL", True),
        ("*", "NEWSWATCH_SMTP_URL", False),
        ("NEWSWATCH_*", "NEWSWATCH_DATABASE_URL", False),
    ],
)
def test_operator_allowlist(allow: str, name: str, ok: bool) -> None:
    assert reference_allowed(name, allow) is ok
    assert (name in reference_env({name: "v"}, allow)) is ok
