"""mask_secret: a long secret shows its last 4 characters, one of 16 or fewer
shows none; plain secrets and the path of a URL follow the same rule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alerts.secrets import SHORT_SECRET, mask_secret

# Printable, no ":" or "/" so that a plain secret is never mistaken for a URL.
CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=":/?#")
PATH_CHARS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789-_.~")


@given(st.text(CHARS, min_size=1, max_size=SHORT_SECRET))
def test_short_secret_shows_nothing_of_itself(secret: str) -> None:
    assert mask_secret(secret) == "***"


@given(st.text(CHARS, min_size=SHORT_SECRET + 1, max_size=200))
def test_long_secret_shows_only_its_last_four(secret: str) -> None:
    masked = mask_secret(secret)
    assert masked == "***" + secret[-4:]
    assert secret[:-4] not in masked


@given(st.text(PATH_CHARS, min_size=1, max_size=SHORT_SECRET - 1))
def test_short_url_path_shows_nothing_of_itself(token: str) -> None:
    url = f"https://hooks.example.org/{token}"  # the path is "/" + token: ≤ 16 characters
    masked = mask_secret(url)
    assert masked == "https://hooks.example.org/…***"
    assert token not in masked.removeprefix("https://hooks.example.org")


@given(st.text(PATH_CHARS, min_size=SHORT_SECRET, max_size=120), st.text(PATH_CHARS, max_size=30))
def test_long_url_path_shows_its_last_four_and_no_query(token: str, query: str) -> None:
    path = "/" + token
    masked = mask_secret(f"https://hooks.example.org{path}?token={query}XyZ")
    assert masked == f"https://hooks.example.org/…***{path[-4:]}"
    assert "XyZ" not in masked


def test_boundary_lengths() -> None:
    cases = {
        "a" * 12: "***",
        "b" * 13: "***",  # shown before the fix: "***bbbb"
        "0123456789abcdef": "***",  # 16: none
        "0123456789abcdefg": "***defg",  # 17: the last 4
        "hunter2": "***",
        "": "",
    }
    assert {k: mask_secret(k) for k in cases} == cases
    assert mask_secret("https://h.example/services/abc") == "https://h.example/…***"  # 13-char path
    assert mask_secret("https://h.example/") == "https://h.example"
