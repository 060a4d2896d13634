"""Alert payloads for email, Slack and webhooks: pure (no I/O, no clock).

Every piece of feed text is untrusted. Invariants kept here:
- nothing from a feed reaches an email header before `header_text` flattened
  its control characters (CR/LF included), so a title cannot add a header;
- HTML parts escape every feed string; links are emitted only for http(s);
- Slack text escapes &, < and > in every feed string (so `<!channel>` is
  shown, not interpreted) and stays within Slack's block limits;
- the webhook body is the `matches --json` object of the contract plus the
  item's story: "story" (id or null) and "also" (the other outlets);
- story data (other outlets, the English headline) arrives as arguments,
  read by the deliver use-case at send time: nothing here reads storage.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from alerts.alert_records import StoredMatch, StoryContext

SUBJECT_CHARS = 200
SLACK_SECTION_CHARS = 3000
SLACK_HEADER_CHARS = 150
SLACK_MAX_BLOCKS = 50
SLACK_TEXT_CHARS = 3000  # the fallback; Slack accepts more, but notifications show little
SNIPPETS_PER_ALERT = 5
# One digest message's limits; a larger digest goes as several parts.
SLACK_DIGEST_MATCHES = 20  # ≤ 2 blocks each (a source heading, the match) + header + tail < 50
SLACK_DIGEST_CHARS = 30_000  # Slack truncates a message's text at 40,000 characters
WEBHOOK_DIGEST_BYTES = 256 * 1024  # receivers commonly refuse bodies from 1 MB (nginx: 1 MB)
EMAIL_DIGEST_MATCHES = 200
EMAIL_DIGEST_CHARS = 1_000_000  # text + HTML, before MIME encoding


class RenderError(ValueError):
    """A value cannot be rendered safely (e.g. a recipient that is not one address)."""


@dataclass(frozen=True, slots=True)
class AlertMatch:
    """One match as an alert shows it: the stored match plus the spellings found,
    which the HTML part highlights inside the snippets."""

    match: StoredMatch
    highlights: tuple[str, ...] = ()
    story: StoryContext | None = None


Stories = Mapping[int, StoryContext]  # item id -> its story, as known at send time
NO_STORIES: Stories = {}
ALSO_NAMED = 10  # outlets named in the "also reported by" line


def also_line(story: StoryContext | None) -> str | None:
    """ "also reported by: yonhap (ko), tass (ru)", or None when no other outlet."""
    if story is None or not story.also:
        return None
    named = [f"{a.source} ({a.language})" if a.language else a.source for a in story.also]
    more = len(named) - ALSO_NAMED
    text = ", ".join(named[:ALSO_NAMED]) + (f" and {more} more" if more > 0 else "")
    return f"also reported by: {text}"


def english_headline(m: StoredMatch, story: StoryContext | None) -> str | None:
    """The story's English headline for a hit in another language (None for an
    English hit, an unknown language, or a story without an English item)."""
    if story is None or story.en_title is None or m.language is None:
        return None
    if m.language.split("-")[0].lower() == "en" or story.en_title == m.item_title:
        return None
    return story.en_title


def story_lines(m: StoredMatch, story: StoryContext | None) -> list[str]:
    """The lines every alert adds about its story, in one place for all channels."""
    en = english_headline(m, story)
    also = also_line(story)
    return ([f"English headline: {en}"] if en else []) + ([also] if also else [])


# ---------------------------------------------------------------- text helpers

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def header_text(text: str, limit: int = SUBJECT_CHARS) -> str:
    """Feed text made safe for an email header: one line, no control characters."""
    flat = _CONTROL_RE.sub(" ", unicodedata.normalize("NFKC", text))
    return shorten(" ".join(flat.split()), limit)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with an explicit +00:00 offset, to the second (as the contract shows)."""
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def human_date(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def safe_link(url: str) -> str | None:
    """The URL if it is a plain http(s) link, else None (no javascript: or data: links)."""
    if re.match(r"^https?://[^\s<>\"']+$", url, re.IGNORECASE):
        return url
    return None


def highlight_html(snippet: str, highlights: Sequence[str]) -> str:
    """The snippet HTML-escaped, with each occurrence of a found spelling in <mark>."""
    words = sorted({h for h in highlights if h.strip()}, key=len, reverse=True)
    if not words:
        return html.escape(snippet)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(snippet):
        out.append(html.escape(snippet[pos : m.start()]))
        out.append(f"<mark>{html.escape(m.group())}</mark>")
        pos = m.end()
    out.append(html.escape(snippet[pos:]))
    return "".join(out)


# ---------------------------------------------------------------- webhook / JSON


def match_object(m: StoredMatch) -> dict[str, Any]:
    """The contract's `matches --json` object for one (item, watchlist)."""
    return {
        "watchlist": m.watchlist,
        "terms": list(m.terms),
        "item": {
            "url": m.item_url,
            "title": m.item_title,
            "source": m.source_name,
            "published": iso(m.published),
            "language": m.language,
        },
        "snippets": list(m.snippets),
        "matched_at": iso(m.matched_at),
        "story": m.story_id,
    }


def alert_object(m: StoredMatch, story: StoryContext | None = None) -> dict[str, Any]:
    """The webhook's object: the `matches --json` one plus "story" (id or null)
    and "also" (the story's other outlets at send time)."""
    also = [] if story is None else story.also
    return {
        **match_object(m),
        "story": m.story_id if story is None else story.story_id,
        "also": [
            {"source": a.source, "language": a.language, "title": a.title, "url": a.url}
            for a in also
        ],
    }


def webhook_body(
    m: StoredMatch,
    story: StoryContext | None = None,
    *,
    group: Sequence[StoredMatch] = (),
    stories: Stories = NO_STORIES,
) -> bytes:
    """One immediate alert. The top-level fields are the first match's object
    (as before: a receiver reading one `watchlist` keeps working); "watchlists"
    names every watchlist the message covers; when it covers more than one
    match (several watchlists to one address, see storage.alert_groups),
    "matches" holds each one's object, oldest first, the first being `m`."""
    doc = alert_object(m, story)
    doc["watchlists"] = list(dict.fromkeys(x.watchlist for x in (m, *group)))
    if len(group) > 1:
        doc["matches"] = [
            alert_object(x, story if x.item_id == m.item_id else stories.get(x.item_id))
            for x in group
        ]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def digest_webhook_body(
    watchlist: str,
    period: str,
    matches: Sequence[StoredMatch],
    part: Part | None = None,
    stories: Stories = NO_STORIES,
) -> bytes:
    """A digest for a webhook: the period and the alert objects, newest first
    (as before; each carries its "story", by which a receiver groups); a digest
    sent in parts says which (`part`, `parts`). A digest to an address of
    several watchlists keeps one object per (item, watchlist); "watchlist" is
    the first one's name, "watchlists" names them all."""
    ordered = [alert_object(m, stories.get(m.item_id)) for m in newest_first(matches)]
    doc: dict[str, Any] = {
        "watchlist": watchlist,
        "watchlists": list(dict.fromkeys([watchlist, *(m.watchlist for m in matches)])),
        "digest": period,
        "count": len(ordered),
        "matches": ordered,
    }
    if part and part[1] > 1:
        doc.update(part=part[0], parts=part[1])
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------- digest ordering


def newest_first(matches: Sequence[StoredMatch]) -> list[StoredMatch]:
    return sorted(matches, key=lambda m: (m.published, m.matched_at, m.id), reverse=True)


def group_by_story(
    matches: Sequence[StoredMatch], stories: Stories = NO_STORIES
) -> list[tuple[str, StoryContext | None, list[StoredMatch]]]:
    """Digest groups as (heading, story, matches): one group per story (its
    items under it, newest first), and items without a story yet grouped by
    source as before. Groups are ordered by their newest match. Every match is
    in exactly one group."""
    groups: dict[tuple[str, object], tuple[str, StoryContext | None, list[StoredMatch]]] = {}
    for m in newest_first(matches):
        story = stories.get(m.item_id)
        key: tuple[str, object] = ("story", story.story_id) if story else ("source", m.source_name)
        if key not in groups:
            heading = f"story: {story.en_title or story.title}" if story else m.source_name
            groups[key] = (heading, story, [])
        groups[key][2].append(m)
    return list(groups.values())


def group_by_source(matches: Sequence[StoredMatch]) -> list[tuple[str, list[StoredMatch]]]:
    """Matches grouped by source; groups ordered by their newest match, and each
    group newest first (by publication date, then match time)."""
    groups: dict[str, list[StoredMatch]] = {}
    for m in newest_first(matches):
        groups.setdefault(m.source_name, []).append(m)
    return list(groups.items())


# ---------------------------------------------------------------- digest parts


Part = tuple[int, int]  # (this part, of how many), from 1


def digest_parts(
    channel: str, matches: Sequence[StoredMatch], stories: Stories = NO_STORIES
) -> list[list[StoredMatch]]:
    """The digest split into messages that each fit the channel's limits, in
    display order (story by story, see `group_by_story`), greedily: a part takes matches
    until the next would pass its count or size budget. A single match always
    fits (stored titles and summaries are capped; a part of one is sent as is).
    Each part is sent and recorded on its own, so one refused part (a 413)
    fails only its own alerts."""
    ordered = [m for _, _, group in group_by_story(matches, stories) for m in group]
    count, budget, cost = _digest_budget(channel)
    parts: list[list[StoredMatch]] = []
    current: list[StoredMatch] = []
    used = 0
    for m in ordered:
        c = cost(m) + _story_cost(m, stories.get(m.item_id))
        if current and (len(current) >= count or used + c > budget):
            parts.append(current)
            current, used = [], 0
        current.append(m)
        used += c
    if current:
        parts.append(current)
    return parts


def _digest_budget(channel: str) -> tuple[int, int, Callable[[StoredMatch], int]]:
    """(matches per part, size budget per part, size of one match) for a channel."""
    if channel == "slack":
        return SLACK_DIGEST_MATCHES, SLACK_DIGEST_CHARS, _slack_cost
    if channel == "webhook":
        return 1_000_000, WEBHOOK_DIGEST_BYTES - 1024, _webhook_cost
    return EMAIL_DIGEST_MATCHES, EMAIL_DIGEST_CHARS, _email_cost


def _story_cost(m: StoredMatch, story: StoryContext | None) -> int:
    """An upper bound of what a match's story adds on any channel: its lines in
    text and HTML (escaping at most doubles them), the webhook's "also" list
    and the group heading."""
    if story is None:
        return 0
    lines = sum(len(line) + 8 for line in story_lines(m, story))
    also = sum(len(a.source) + len(a.title) + len(a.url) + 64 for a in story.also)
    return 2 * (lines + also + len(story.title) + len(story.en_title or "")) + 64


def _slack_cost(m: StoredMatch) -> int:
    return len(_slack_match_text(m, snippets=1)) + len(slack_fit(m.source_name, 500)) + 64


def _webhook_cost(m: StoredMatch) -> int:
    return len(webhook_body(m)) + 1


def _email_cost(m: StoredMatch) -> int:
    a = AlertMatch(m)
    return sum(len(line) + 1 for line in _text_block(a)) + len(_html_block(a, heading="h3"))


def part_label(part: Part | None) -> str:
    return f" (part {part[0]} of {part[1]})" if part and part[1] > 1 else ""


# ---------------------------------------------------------------- email


def message_id(mail_from: str, *parts: object) -> str:
    """A deterministic Message-ID, so a repeat after a crash can be recognised."""
    domain = mail_from.rpartition("@")[2].strip().strip(">") or "newswatch.invalid"
    domain = re.sub(r"[^A-Za-z0-9.-]", "", domain) or "newswatch.invalid"
    local = ".".join(re.sub(r"[^A-Za-z0-9-]", "-", str(p)) for p in parts)
    return f"<newswatch.{local}@{domain}>"


def _address(value: str, what: str) -> Address:
    if _CONTROL_RE.search(value) or "," in value or not value.strip():
        raise RenderError(f"{what} is not a single email address")
    try:
        return Address(addr_spec=value.strip())
    except (ValueError, IndexError) as e:
        raise RenderError(f"{what} is not a valid email address") from e


def _new_message(
    *, subject: str, mail_from: str, to: str, msg_id: str, date: datetime
) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = header_text(subject)
    msg["From"] = _address(mail_from, "NEWSWATCH_MAIL_FROM")
    msg["To"] = _address(to, "the recipient")
    msg["Date"] = format_datetime(date.astimezone(UTC))
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    return msg


def _text_block(a: AlertMatch) -> list[str]:
    m = a.match
    lines = [
        m.item_title,
        m.item_url,
        f"Source: {m.source_name} · Published: {human_date(m.published)}",
        f"Matched terms: {', '.join(m.terms)}",
    ]
    lines += story_lines(m, a.story)
    lines += [f"  > {' '.join(s.split())}" for s in m.snippets[:SNIPPETS_PER_ALERT]]
    return lines


def _html_block(a: AlertMatch, heading: str = "h2") -> str:
    m = a.match
    title = html.escape(m.item_title or m.item_url)
    link = safe_link(m.item_url)
    head = f'<a href="{html.escape(link, quote=True)}">{title}</a>' if link else title
    snippets = "".join(
        f"<blockquote>{highlight_html(s, a.highlights)}</blockquote>"
        for s in m.snippets[:SNIPPETS_PER_ALERT]
    )
    story = "".join(f"<br>{html.escape(line)}" for line in story_lines(m, a.story))
    return (
        f"<{heading}>{head}</{heading}>"
        f"<p>Source: {html.escape(m.source_name)} · Published: {human_date(m.published)}<br>"
        f"Matched terms: <b>{html.escape(', '.join(m.terms))}</b>{story}</p>"
        f"{snippets}<p><small>{html.escape(m.item_url)}</small></p>"
    )


def _html_page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )


def email_message(
    a: AlertMatch, *, mail_from: str, to: str, ids: tuple[int, int, int], date: datetime
) -> EmailMessage:
    """One alert as a text+HTML email; `ids` is (item id, watchlist id, recipient id)."""
    m = a.match
    subject = f"[newswatch] {m.watchlist}: {m.item_title or m.item_url}"
    msg = _new_message(
        subject=subject,
        mail_from=mail_from,
        to=to,
        msg_id=message_id(mail_from, "alert", *ids),
        date=date,
    )
    text = [f"Watchlist {m.watchlist} matched a new item.", "", *_text_block(a), ""]
    msg.set_content("\n".join(text))
    body = f"<p>Watchlist <b>{html.escape(m.watchlist)}</b> matched a new item.</p>"
    msg.add_alternative(_html_page(header_text(subject), body + _html_block(a)), subtype="html")
    return msg


def by_item(alerts: Sequence[AlertMatch]) -> list[list[AlertMatch]]:
    """A grouped alert's matches per item, items in first-match order."""
    items: dict[int, list[AlertMatch]] = {}
    for a in alerts:
        items.setdefault(a.match.item_id, []).append(a)
    return list(items.values())


def watchlist_names(alerts: Sequence[AlertMatch]) -> list[str]:
    return list(dict.fromkeys(a.match.watchlist for a in alerts))


def terms_by_watchlist(alerts: Sequence[AlertMatch]) -> str:
    """ "air-defence: SAM, Pantsir; brics: BRICS" (each watchlist's own terms)."""
    return "; ".join(f"{a.match.watchlist}: {', '.join(a.match.terms)}" for a in alerts)


def _merged(alerts: Sequence[AlertMatch]) -> AlertMatch:
    """One item's matches of several watchlists as one block: the first match's
    item, every snippet once (in order), every found spelling highlighted."""
    first = alerts[0]
    snippets = tuple(dict.fromkeys(s for a in alerts for s in a.match.snippets))
    highlights = tuple(dict.fromkeys(h for a in alerts for h in a.highlights))
    m = replace(first.match, snippets=snippets, terms=(terms_by_watchlist(alerts),))
    return AlertMatch(m, highlights, first.story)


def merge_by_item(alerts: Sequence[AlertMatch]) -> list[AlertMatch]:
    """A digest of several watchlists: one entry per item, naming each
    watchlist's terms (`wl-a: SAM; wl-b: BRICS`); its match id is the item's
    first match's. A digest of one watchlist is returned as it is."""
    if len(watchlist_names(alerts)) <= 1:
        return list(alerts)
    return [_merged(group) for group in by_item(alerts)]


def group_email(
    alerts: Sequence[AlertMatch],
    *,
    mail_from: str,
    to: str,
    ids: tuple[int, int, int],
    date: datetime,
) -> EmailMessage:
    """Several watchlists' alerts to one address about one item (or one folded
    story) as one email naming every watchlist and each one's terms. `ids`
    are the first alert's (item, watchlist, recipient): with one alert this is
    exactly `email_message`, Message-ID included."""
    if len(alerts) == 1:
        return email_message(alerts[0], mail_from=mail_from, to=to, ids=ids, date=date)
    names = watchlist_names(alerts)
    first = alerts[0].match
    subject = f"[newswatch] {', '.join(names)}: {first.item_title or first.item_url}"
    msg = _new_message(
        subject=subject,
        mail_from=mail_from,
        to=to,
        msg_id=message_id(mail_from, "alert", *ids),
        date=date,
    )
    groups = by_item(alerts)
    what = "a new item" if len(groups) == 1 else f"{len(groups)} items of one story"
    text = [f"Watchlists {', '.join(names)} matched {what}.", ""]
    body = [
        f"<p>Watchlists <b>{html.escape(', '.join(names))}</b> matched {html.escape(what)}.</p>"
    ]
    for group in groups:
        merged = _merged(group)
        text += [*_text_block(merged), ""]
        body.append(_html_block(merged))
    msg.set_content("\n".join(text))
    msg.add_alternative(_html_page(header_text(subject), "".join(body)), subtype="html")
    return msg


def period_label(period: str) -> str:
    """A digest period key as people read it: hourly `2026-11-30T01` →
    `2026-11-30 01:00–02:00 UTC`, daily `2026-11-30` → `2026-11-30`. The key
    itself (Message-IDs, the webhook's `digest` field) is unchanged. Pure."""
    day, sep, hour = period.partition("T")
    if not sep or not (hour.isascii() and hour.isdigit() and len(hour) == 2):
        return period
    h = int(hour)
    return f"{day} {h:02d}:00–{(h + 1) % 24:02d}:00 UTC"


def digest_email(
    watchlist: str,
    period: str,
    alerts: Sequence[AlertMatch],
    *,
    mail_from: str,
    to: str,
    ids: tuple[int, int],
    date: datetime,
    part: Part | None = None,
) -> EmailMessage:
    """One digest email per (watchlist, recipient, period), or per part of one.

    `ids` is (watchlist id, recipient id); a part's Message-ID also names its
    first match, so each part is recognisable on a repeat."""
    by_match = {a.match.id: a for a in alerts}
    stories = {a.match.item_id: a.story for a in alerts if a.story is not None}
    groups = group_by_story([a.match for a in alerts], stories)
    n = len(alerts)
    subject = (
        f"[newswatch] {watchlist}: {n} new match{'es' if n != 1 else ''} ({period_label(period)})"
        + part_label(part)
    )
    extra = (min(by_match),) if part and part[1] > 1 else ()
    msg = _new_message(
        subject=subject,
        mail_from=mail_from,
        to=to,
        msg_id=message_id(mail_from, "digest", ids[0], ids[1], period, *extra),
        date=date,
    )
    label = period_label(period)
    text = [f"Digest of watchlist {watchlist} for {label}: {n} matches, by story.", ""]
    parts = [
        f"<p>Digest of watchlist <b>{html.escape(watchlist)}</b> for {html.escape(label)}: "
        f"{n} matches, by story.</p>"
    ]
    for heading, _, matches in groups:
        text += [f"== {header_text(heading, 500)} ==", ""]
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for m in matches:
            text += [*_text_block(by_match[m.id]), ""]
            parts.append(_html_block(by_match[m.id], heading="h3"))
    msg.set_content("\n".join(text))
    msg.add_alternative(_html_page(header_text(subject), "".join(parts)), subtype="html")
    return msg


# ---------------------------------------------------------------- Slack


def slack_escape(text: str) -> str:
    """Slack's control characters as entities; the only escaping Slack asks for."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_fit(text: str, limit: int) -> str:
    """Escape `text` for Slack and cut it (never inside an entity) to `limit` characters."""
    escaped = slack_escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    for ch in text:
        piece = slack_escape(ch)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + "…"


def _slack_link(url: str, title: str, limit: int) -> str:
    link = safe_link(url)
    if link is None or len(link) > 1000:
        return slack_fit(title or url, limit)
    target = slack_escape(link).replace("|", "%7C")
    return f"<{target}|{slack_fit(title or url, limit)}>"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SLACK_SECTION_CHARS]}}


def _slack_match_text(m: StoredMatch, snippets: int, story: StoryContext | None = None) -> str:
    head = "*" + _slack_link(m.item_url, m.item_title, 500) + "*"
    terms = "Terms: " + slack_fit(", ".join(m.terms), 300)
    meta = f"{slack_fit(m.source_name, 200)} · {human_date(m.published)}"
    quoted = [f">{slack_fit(' '.join(s.split()), 400)}" for s in m.snippets[:snippets]]
    about = [slack_fit(line, 700) for line in story_lines(m, story)]
    return "\n".join([head, terms, *about, *quoted, meta])


def slack_payload(m: StoredMatch, story: StoryContext | None = None) -> dict[str, Any]:
    """An incoming-webhook message: `text` for notifications, `blocks` for display."""
    header = slack_fit(f"newswatch: {m.watchlist}", SLACK_HEADER_CHARS)
    text = f"[{slack_fit(m.watchlist, 200)}] " + _slack_link(m.item_url, m.item_title, 500)
    return {
        "text": text[:SLACK_TEXT_CHARS],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header}},
            _section(_slack_match_text(m, snippets=2, story=story)),
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def slack_group_payload(
    matches: Sequence[StoredMatch], stories: Stories = NO_STORIES
) -> dict[str, Any]:
    """Several watchlists' alerts to one Slack webhook about one item (or one
    folded story): one message naming every watchlist; one section per item
    with each watchlist's terms. With one match this is `slack_payload`."""
    first = matches[0]
    if len(matches) == 1:
        return slack_payload(first, stories.get(first.item_id))
    alerts = [AlertMatch(m, (), stories.get(m.item_id)) for m in matches]
    names = ", ".join(watchlist_names(alerts))
    header = slack_fit(f"newswatch: {names}", SLACK_HEADER_CHARS)
    text = f"[{slack_fit(names, 200)}] " + _slack_link(first.item_url, first.item_title, 500)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header}}
    ]
    for group in by_item(alerts)[: SLACK_MAX_BLOCKS - 1]:
        merged = _merged(group)
        blocks.append(_section(_slack_match_text(merged.match, snippets=2, story=merged.story)))
    return {
        "text": text[:SLACK_TEXT_CHARS],
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def slack_digest_payload(
    watchlist: str,
    period: str,
    matches: Sequence[StoredMatch],
    part: Part | None = None,
    stories: Stories = NO_STORIES,
) -> dict[str, Any]:
    """A digest (or one part of it, see `digest_parts`) as one Slack message,
    grouped by story (`group_by_story`), within the 50-block limit."""
    groups = group_by_story(matches, stories)
    n = len(matches)
    header = slack_fit(
        f"newswatch digest: {watchlist} ({period_label(period)}){part_label(part)}",
        SLACK_HEADER_CHARS,
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header}}
    ]
    shown = 0
    for heading, story, items in groups:
        for i, m in enumerate(items):
            needed = 2 if i == 0 else 1
            if len(blocks) + needed > SLACK_MAX_BLOCKS - 1:
                break
            if i == 0:
                blocks.append(_section(f"*{slack_fit(heading, 500)}*"))
            blocks.append(_section(_slack_match_text(m, snippets=1, story=story)))
            shown += 1
    if shown < n:
        blocks.append(_section(f"… and {n - shown} more matches not shown here."))
    text = (
        f"newswatch digest: {slack_fit(watchlist, 200)}: {n} new matches ({period_label(period)})"
        + part_label(part)
    )
    return {
        "text": text[:SLACK_TEXT_CHARS],
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def slack_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()
