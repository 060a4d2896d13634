"""`stories:` in watchlist files, and the story lines alerts and digests show
(pure: render gets the story as data)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts import render
from alerts.alert_records import AlsoReported, StoredMatch, StoryContext, Term, Watchlist
from alerts.watchlist_files import WatchlistFileError, dump_watchlists, parse_watchlists
from tests.unit.test_render import NOW, match

FILE = """watchlists:
  - name: air-defence
    terms: [SAM]
{extra}"""


def test_stories_defaults_to_each_and_reads_fold() -> None:
    assert parse_watchlists(FILE.format(extra=""))[0].stories == "each"
    assert parse_watchlists(FILE.format(extra="    stories: fold\n"))[0].stories == "fold"
    assert parse_watchlists(FILE.format(extra="    stories: each\n"))[0].stories == "each"


@pytest.mark.parametrize(
    "value", ["Fold", "folded", "yes", "true", "1", "[fold]", "{a: 1}", "''", "null", "fold each"]
)
def test_a_wrong_stories_value_is_one_line_naming_the_line(value: str) -> None:
    with pytest.raises(WatchlistFileError) as e:
        parse_watchlists(FILE.format(extra=f"    stories: {value}\n"))
    assert str(e.value) == "line 2: watchlist 'air-defence': stories must be fold or each"


@given(st.sampled_from(["fold", "each"]), st.sampled_from(["none", "hourly", "daily"]))
def test_stories_round_trips_through_export(mode: str, digest: str) -> None:
    w = Watchlist(name="w", rules=(Term("SAM"),), digest=digest, stories=mode)  # type: ignore[arg-type]
    text = dump_watchlists([w])
    assert f"stories: {mode}" in text
    assert parse_watchlists(text) == [w]


def story(*also: tuple[str, str | None], en: str | None = None, sid: int = 17) -> StoryContext:
    return StoryContext(
        sid,
        "Story title",
        en,
        tuple(AlsoReported(s, lang, f"{s} title", f"https://{s}.example/x") for s, lang in also),
    )


def test_also_line_names_outlets_and_languages_and_caps_them() -> None:
    assert render.also_line(None) is None and render.also_line(story()) is None
    line = render.also_line(story(("yonhap", "ko"), ("tass", "ru"), ("wire", None)))
    assert line == "also reported by: yonhap (ko), tass (ru), wire"
    many = render.also_line(story(*((f"s{i}", "en") for i in range(15))))
    assert many is not None and many.endswith("s9 (en) and 5 more")


@pytest.mark.parametrize(
    ("language", "title", "shown"),
    [
        ("ko", "북한 발사", True),
        ("zh-Hans", "朝鲜发射", True),
        ("en", "North Korea launches", False),
        ("en-GB", "North Korea launches", False),
        (None, "unknown language", False),
        ("ru", "North Korea launches", False),  # its own title is the English one
    ],
)
def test_english_headline_only_for_a_foreign_hit(
    language: str | None, title: str, shown: bool
) -> None:
    m = match(language=language, item_title=title)
    s = story(en="North Korea launches")
    assert render.english_headline(m, s) == ("North Korea launches" if shown else None)
    assert render.english_headline(m, story()) is None  # no English item yet


HOSTILE = ["<script>alert(1)</script>", "<!channel>", "a & b <b>", "x\r\nBcc: evil@example.org"]


@pytest.mark.parametrize("source", HOSTILE)
def test_story_lines_are_escaped_on_every_channel(source: str) -> None:
    s = story((source, "ko"), en="<img src=x onerror=alert(1)>")
    m = match(language="ko")
    msg = render.email_message(
        render.AlertMatch(m, (), s),
        mail_from="nw@example.org",
        to="a@example.org",
        ids=(1, 2, 3),
        date=NOW,
    )
    html_part = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html_part and "<img" not in html_part and "<!channel>" not in html_part
    assert "also reported by" in html_part
    slack = json.dumps(render.slack_payload(m, s))
    assert "<!channel>" not in slack and "<script>" not in slack
    body = json.loads(render.webhook_body(m, s))
    assert body["also"][0]["source"] == source and body["story"] == 17  # data, kept exact
    assert "Bcc" not in str(msg["Subject"]) and len(msg.get_all("Bcc") or []) == 0


def test_a_plain_alert_says_nothing_of_stories_without_one() -> None:
    m = match()
    text = (
        render.email_message(
            render.AlertMatch(m),
            mail_from="nw@example.org",
            to="a@example.org",
            ids=(1, 2, 3),
            date=NOW,
        )
        .get_body(("plain",))
        .get_content()
    )  # type: ignore[union-attr]
    assert "also reported by" not in text and "English headline" not in text


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["a", "b", "c"]), st.integers(0, 50)),
        min_size=1,
        max_size=30,
    )
)
def test_group_by_story_keeps_every_match_once_and_stories_together(
    rows: list[tuple[int, str, int]],
) -> None:
    """Story 0 means "no story yet" (grouped by source, as before)."""
    matches = [
        match(id=i, item_id=100 + i, source_name=src, published=NOW - timedelta(hours=h))
        for i, (_, src, h) in enumerate(rows)
    ]
    stories = {100 + i: story(sid=sid) for i, (sid, _, _) in enumerate(rows) if sid}
    groups = render.group_by_story(matches, stories)
    flat: list[StoredMatch] = [m for _, _, g in groups for m in g]
    assert sorted(m.id for m in flat) == list(range(len(rows)))
    keys = [
        (s.story_id if s else None, g[0].source_name if s is None else None) for _, s, g in groups
    ]
    assert len(keys) == len(set(keys))  # one heading per story (or per source without one)
    for _, s, g in groups:
        assert all(stories.get(m.item_id) == s for m in g)
        assert g == render.newest_first(g)
    newest = [g[0].published for _, _, g in groups]
    assert newest == sorted(newest, reverse=True)
    parts = render.digest_parts("slack", matches, stories)
    assert [m for p in parts for m in p] == flat  # parts keep the display order


def test_digest_webhook_and_slack_carry_the_story() -> None:
    a = match(id=1, item_id=1, source_name="isw")
    b = match(id=2, item_id=2, source_name="yonhap", language="ko", published=a.published)
    stories = {1: story(("yonhap", "ko"), sid=5), 2: story(("isw", "en"), sid=5, en="SAMs sent")}
    doc = json.loads(render.digest_webhook_body("w", "2026-11-22", [a, b], None, stories))
    assert [m["story"] for m in doc["matches"]] == [5, 5]
    slack = render.slack_digest_payload("w", "2026-11-22", [a, b], None, stories)
    headings = [blk for blk in slack["blocks"] if "story: SAMs sent" in json.dumps(blk)]
    assert len(headings) == 1
