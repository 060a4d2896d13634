"""alerts.render: header safety, HTML and Slack escaping, limits, determinism."""

from __future__ import annotations

import email
import email.policy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts import render
from alerts.alert_records import StoredMatch
from alerts.render import AlertMatch

NOW = datetime(2026, 11, 22, 2, 10, tzinfo=UTC)


def match(**kw: object) -> StoredMatch:
    base = StoredMatch(
        id=1,
        watchlist="air-defence",
        terms=("SAM",),
        snippets=("… sent surface-to-air missile (SAM) batteries to Iran …",),
        matched_at=NOW,
        item_id=7,
        item_url="https://example.org/a?x=1&y=2",
        item_title="SAMs sent",
        source_name="isw",
        published=datetime(2025, 7, 9, 13, 0, tzinfo=UTC),
        language="en",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def build(m: StoredMatch, highlights: tuple[str, ...] = ("SAM",)) -> email.message.EmailMessage:
    msg = render.email_message(
        AlertMatch(m, highlights),
        mail_from="nw@alerts.example.org",
        to="analyst@example.org",
        ids=(7, 2, 3),
        date=NOW,
    )
    raw = msg.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_title_with_crlf_bcc_adds_no_header() -> None:
    m = match(item_title="Breaking\r\nBcc: victim@evil.example\r\nX-Evil: 1\nSubject: x")
    msg = render.email_message(
        AlertMatch(m), mail_from="nw@example.org", to="analyst@example.org", ids=(1, 2, 3), date=NOW
    )
    raw = msg.as_bytes()
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    names = [
        line.split(b":", 1)[0].lower()
        for line in header_block.split(b"\r\n")
        if line and not line[:1].isspace()
    ]
    assert b"bcc" not in names and b"x-evil" not in names
    assert names.count(b"subject") == 1
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert "Breaking Bcc: victim@evil.example X-Evil: 1 Subject: x" in str(parsed["Subject"])


def test_control_and_unicode_line_separators_flattened() -> None:
    assert render.header_text("a\u2028b\u0085c\x00d\te") == "a b c d e"


def test_subject_names_watchlist_and_title_and_is_bounded() -> None:
    msg = build(match(item_title="Pantsir " * 100))
    subject = str(msg["Subject"])
    assert subject.startswith("[newswatch] air-defence: Pantsir")
    assert len(subject) <= render.SUBJECT_CHARS


def test_html_part_escapes_and_highlights() -> None:
    m = match(
        item_title="<script>alert(1)</script>",
        snippets=("the <b>SAM</b> & sam system",),
        item_url="javascript:alert(1)",
    )
    msg = build(m)
    html_part = msg.get_body(("html",))
    text_part = msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    body = html_part.get_content()
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "&lt;b&gt;<mark>SAM</mark>&lt;/b&gt; &amp; <mark>sam</mark>" in body
    assert 'href="javascript' not in body
    text = text_part.get_content()
    assert "SAM" in text and "Matched terms: SAM" in text and "isw" in text


def test_email_link_source_date() -> None:
    msg = build(match())
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "https://example.org/a?x=1&y=2" in text
    assert "2025-07-09 13:00 UTC" in text
    body = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'href="https://example.org/a?x=1&amp;y=2"' in body


def test_message_id_deterministic() -> None:
    a, b = build(match()), build(match(item_title="other"))
    assert a["Message-ID"] == b["Message-ID"] == "<newswatch.alert.7.2.3@alerts.example.org>"
    other = render.email_message(
        AlertMatch(match()),
        mail_from="nw@alerts.example.org",
        to="analyst@example.org",
        ids=(7, 2, 4),
        date=NOW,
    )
    assert other["Message-ID"] != a["Message-ID"]
    d = render.digest_email(
        "wl",
        "2026-11-22",
        [AlertMatch(match())],
        mail_from="x@y.org",
        to="a@b.org",
        ids=(2, 3),
        date=NOW,
    )
    assert d["Message-ID"] == "<newswatch.digest.2.3.2026-11-22@y.org>"


def test_recipient_must_be_one_address() -> None:
    for bad in ("a@b.org, c@d.org", "a@b.org\r\nBcc: c@d.org", ""):
        try:
            render.email_message(
                AlertMatch(match()), mail_from="x@y.org", to=bad, ids=(1, 2, 3), date=NOW
            )
        except render.RenderError:
            continue
        raise AssertionError(f"accepted {bad!r}")


def test_slack_escapes_mentions_and_links() -> None:
    m = match(
        item_title="<!channel> alert <http://x|click>",
        snippets=("a <@U123> & b",),
        source_name="<!here>",
    )
    payload = render.slack_payload(m)
    dumped = json.dumps(payload)
    assert "<!channel>" not in dumped and "<!here>" not in dumped
    assert "<http://x|click>" not in dumped and "<@U123>" not in dumped
    section = payload["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; alert &lt;http://x|click&gt;" in section
    assert "a &lt;@U123&gt; &amp; b" in section
    assert "<https://example.org/a?x=1&amp;y=2|" in section  # the item link itself works
    assert "&lt;!here&gt;" in section
    assert payload["text"].startswith("[air-defence] <https://example.org/")


def test_slack_limits() -> None:
    m = match(item_title="&" * 5000, snippets=("<" * 5000,) * 5, terms=("x" * 4000,))
    payload = render.slack_payload(m)
    for block in payload["blocks"]:
        text = block["text"]["text"]
        limit = render.SLACK_HEADER_CHARS if block["type"] == "header" else 3000
        assert len(text) <= limit
        assert not text.endswith("&am…") and "&a…" not in text
    many = [match(id=i, item_id=i, source_name=f"s{i % 7}") for i in range(200)]
    digest = render.slack_digest_payload("wl" * 200, "2026-11-22", many)
    assert len(digest["blocks"]) <= 50
    assert len(digest["blocks"][0]["text"]["text"]) <= 150
    assert "more matches not shown" in digest["blocks"][-1]["text"]["text"]


def test_slack_fit_never_cuts_an_entity() -> None:
    out = render.slack_fit("a&b" * 10, 12)
    assert len(out) <= 12 and out.endswith("…")
    assert out.count("&amp;") == out.count("&")


def test_webhook_body_is_the_matches_json_object_plus_its_story() -> None:
    body = json.loads(render.webhook_body(match()))
    assert body == {
        "watchlist": "air-defence",
        "terms": ["SAM"],
        "item": {
            "url": "https://example.org/a?x=1&y=2",
            "title": "SAMs sent",
            "source": "isw",
            "published": "2025-07-09T13:00:00+00:00",
            "language": "en",
        },
        "snippets": ["… sent surface-to-air missile (SAM) batteries to Iran …"],
        "matched_at": "2026-11-22T02:10:00+00:00",
        "story": None,  # not assigned yet
        "also": [],
        "watchlists": ["air-defence"],  # added with the grouped alerts (issue #17)
    }
    assert json.loads(render.webhook_body(replace(match(), story_id=17)))["story"] == 17


def test_digest_newest_first_grouped_by_source() -> None:
    t = datetime(2026, 11, 21, tzinfo=UTC)
    ms = [
        match(id=1, source_name="a", item_title="a-old", published=t),
        match(id=2, source_name="b", item_title="b-new", published=t + timedelta(hours=5)),
        match(id=3, source_name="a", item_title="a-new", published=t + timedelta(hours=3)),
        match(id=4, source_name="b", item_title="b-old", published=t + timedelta(hours=1)),
    ]
    groups = render.group_by_source(ms)
    assert [(s, [m.item_title for m in g]) for s, g in groups] == [
        ("b", ["b-new", "b-old"]),
        ("a", ["a-new", "a-old"]),
    ]
    msg = render.digest_email(
        "air-defence",
        "2026-11-21",
        [AlertMatch(m) for m in ms],
        mail_from="x@y.org",
        to="a@b.org",
        ids=(1, 2),
        date=NOW,
    )
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    order = [text.index(x) for x in ("== b ==", "b-new", "b-old", "== a ==", "a-new", "a-old")]
    assert order == sorted(order)
    assert "4 new matches" in str(msg["Subject"])
    hook = json.loads(render.digest_webhook_body("air-defence", "2026-11-21", ms))
    assert [m["item"]["title"] for m in hook["matches"]] == ["b-new", "a-new", "b-old", "a-old"]
