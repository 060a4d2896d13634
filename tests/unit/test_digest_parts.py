"""`render.digest_parts` (issue #16): whatever the matches hold, every part of
a digest fits its channel's limits, and the parts hold each match once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import render
from alerts.alert_records import StoredMatch
from storage.items import MAX_TITLE_CHARS, cap

NOW = datetime(2026, 11, 22, 2, 10, tzinfo=UTC)
HOSTILE = st.one_of(
    st.text(max_size=1500),
    st.sampled_from(["<&>" * 600, "판치르" * 400, "&amp;" * 300, "\u202e|>" * 400, ""]),
)


@st.composite
def digests(draw: st.DrawFn) -> list[StoredMatch]:
    n = draw(st.integers(1, 90))
    titles = draw(st.lists(HOSTILE, min_size=1, max_size=5))
    sources = draw(st.lists(HOSTILE.map(lambda t: t[:200] or "s"), min_size=1, max_size=4))
    return [
        StoredMatch(
            id=i,
            watchlist="w",
            terms=("SAM",),
            snippets=tuple(t[:400] for t in titles[:3]),
            matched_at=NOW,
            item_id=i,
            item_url=f"https://example.org/{i}?q=" + "<>|" * (i % 7),
            item_title=cap(titles[i % len(titles)], MAX_TITLE_CHARS),
            source_name=sources[i % len(sources)],
            published=NOW - timedelta(minutes=i),
            language="en",
        )
        for i in range(n)
    ]


def _slack_ok(payload: dict[str, object]) -> bool:
    blocks = payload["blocks"]
    assert isinstance(blocks, list)
    body = render.slack_body(payload).decode()
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    return len(blocks) <= 50 and all(len(t) <= 3000 for t in texts) and len(body) <= 40_000


@settings(max_examples=40, deadline=None)
@given(digests())
def test_every_part_fits_and_holds_each_match_once(matches: list[StoredMatch]) -> None:
    for channel in ("slack", "webhook", "email"):
        parts = render.digest_parts(channel, matches)
        ids = [m.id for p in parts for m in p]
        assert sorted(ids) == [m.id for m in matches]
        n = len(parts)
        for k, part in enumerate(parts, 1):
            if channel == "slack":
                payload = render.slack_digest_payload("w", "2026-11-22", part, (k, n))
                assert _slack_ok(payload)
                shown = sum(1 for b in payload["blocks"] if "Terms: " in json.dumps(b))
                assert shown == len(part)
            elif channel == "webhook":
                body = render.digest_webhook_body("w", "2026-11-22", part, (k, n))
                assert len(body) <= render.WEBHOOK_DIGEST_BYTES or len(part) == 1
            else:
                assert len(part) <= render.EMAIL_DIGEST_MATCHES


def test_one_part_is_labelled_as_before() -> None:
    m = StoredMatch(1, "w", ("SAM",), ("a SAM b",), NOW, 1, "https://e.org/1", "t", "s", NOW, "en")
    assert render.digest_parts("slack", [m]) == [[m]]
    payload = render.slack_digest_payload("w", "p", [m], (1, 1))
    assert "part" not in str(payload["text"])
    assert "part" not in json.loads(render.digest_webhook_body("w", "p", [m], (1, 1)))
