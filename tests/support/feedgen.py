"""Deterministic generated feeds: RSS 2.0, RSS 1.0, Atom and JSON Feed in en/ru/ko/zh.

Shared by bench/crawl.py (1,000 feeds served locally) and the equivalence
tests of the fast feed parser (tests/unit/test_fastfeed.py), so the bench
measures exactly the shapes the tests prove equal. Sizes follow real feeds:
about half carry full HTML content (2–6 KB per entry), the others a summary
of a few hundred characters; links sometimes carry tracking parameters,
GUIDs are URNs, permalinks or missing, dates use several time zones or are
missing. `feed_bytes(n)` is a pure function of n (and the entry count).
"""

from __future__ import annotations

import hashlib
import html
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime


def _words(text: str) -> list[str]:
    return text.split()


WORDS = {
    "en": _words(
        "the ministry said forces moved air defence systems near border officials "
        "report analysis strategic missile launch exercise navy regional security "
        "sanctions summit talks drones artillery brigade intelligence assessment"
    ),
    "ru": _words(
        "министерство заявило войска переместили системы противовоздушной обороны "
        "возле границы чиновники сообщают анализ стратегический ракетный пуск учения "
        "флот региональная безопасность санкции саммит переговоры беспилотники"
    ),
    "ko": _words(
        "국방부는 군이 방공 체계를 국경 인근으로 이동했다고 밝혔다 당국자들은 분석 "
        "전략 미사일 발사 훈련 해군 지역 안보 제재 정상회담 협상 무인기 포병 여단"
    ),
    "zh": list(
        "国防部表示部队将防空系统转移到边境附近官员报告分析战略导弹发射演习海军地区安全制裁峰会谈判"
    ),
}
TERMS = {
    "en": ["Pantsir", "BRICS", "S-400", "surface-to-air missile", "North Korea"],
    "ru": ["Панцирь", "БРИКС", "С-400", "ЗРК", "КНДР"],
    "ko": ["판치르", "브릭스", "북한", "지대공 미사일"],
    "zh": ["铠甲-S1", "金砖国家", "朝鲜", "地对空导弹"],
}
LANGS = ("en", "ru", "ko", "zh")
FORMATS = ("rss20",) * 14 + ("atom",) * 3 + ("rss10",) * 2 + ("json",)
HOT = 0.04  # share of entries that mention a watched term: watchlists match a few per cent
BASE_TIME = datetime(2025, 7, 9, 12, 0, tzinfo=UTC)


def sentence(rng: random.Random, lang: str, term: bool = False) -> str:
    words = rng.choices(WORDS[lang], k=rng.randint(6, 16))
    if term:
        words.insert(rng.randrange(len(words)), rng.choice(TERMS[lang]))
    joiner = "" if lang == "zh" else " "
    text = joiner.join(words)
    return text[0].upper() + text[1:] + ("。" if lang == "zh" else ".")


def paragraph(rng: random.Random, lang: str, sentences: int) -> str:
    return " ".join(sentence(rng, lang) for _ in range(sentences))


def html_body(rng: random.Random, lang: str, target: int) -> str:
    parts: list[str] = []
    size = 0
    while size < target:
        p = html.escape(paragraph(rng, lang, rng.randint(2, 5)), quote=False)
        roll = rng.random()
        if roll < 0.2:
            p = f'<a href="/related/{rng.randint(1, 999)}">{p[:40]}</a> {p[40:]}'
        elif roll < 0.3:
            p = f"<b>{p[:20]}</b>{p[20:]} &amp; &#8217;more&#8217;"
        parts.append(f"<p>{p}</p>")
        size += len(p)
    if rng.random() < 0.2:
        parts.append('<script>track("x")</script><img src="/i.png" alt="">')
    if rng.random() < 0.2:
        parts.append("<ul><li>one</li><li>two &lt;three&gt;</li></ul>")
    return "\n".join(parts)


def entry(rng: random.Random, n: int, i: int, lang: str, full: bool) -> dict[str, object]:
    host = f"site{n % 97}.example"
    link = f"https://{host}/news/{n}/{i}"
    if rng.random() < 0.3:
        link += "?utm_source=rss&utm_medium=feed"
    elif rng.random() < 0.1:
        link += "?id=7&b=2#comments"
    when = BASE_TIME - timedelta(minutes=37 * i + n)
    guid_roll = rng.random()
    return {
        "title": sentence(rng, lang)[: rng.randint(30, 110)],
        "link": link,
        "guid": None if guid_roll < 0.1 else (link if guid_roll < 0.4 else f"urn:x:{n}:{i}"),
        "published": None if rng.random() < 0.05 else when,
        "tz": rng.choice((0, 0, 3, 9, -5)),
        "summary": sentence(rng, lang, term=rng.random() < HOT)
        + " "
        + paragraph(rng, lang, rng.randint(0, 3)),
        "summary_html": rng.random() < 0.5,
        "content": html_body(rng, lang, rng.randint(1200, 4000)) if full else None,
        "author": f"Author {i % 7}",
    }


def feed_bytes(n: int, entries: int = 30) -> bytes:
    """The body of generated feed number n (deterministic)."""
    rng = random.Random(n)
    lang = LANGS[n % len(LANGS)]
    full = rng.random() < 0.5
    fmt = FORMATS[n % len(FORMATS)]
    items = [entry(rng, n, i, lang, full) for i in range(entries)]
    title = f"Generated {lang} feed {n} &amp; co"
    if fmt == "atom":
        return _atom(n, title, lang, items)
    if fmt == "rss10":
        return _rss10(n, title, lang, items)
    if fmt == "json":
        return _json(n, title, lang, items)
    return _rss20(n, title, lang, items)


def etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:20] + '"'


def _date(item: dict[str, object], style: str) -> str:
    when = item["published"]
    assert isinstance(when, datetime)
    tz = item["tz"]
    assert isinstance(tz, int)
    local = when.astimezone(UTC if tz == 0 else _zone(tz))
    if style == "rfc822":
        return format_datetime(local, usegmt=tz == 0)
    return local.isoformat().replace("+00:00", "Z")


def _zone(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


def _summary_xml(item: dict[str, object]) -> str:
    summary = str(item["summary"])
    if item["summary_html"]:
        return "<![CDATA[<p>" + summary + "</p>]]>"
    return html.escape(summary, quote=False)


def _rss20(n: int, title: str, lang: str, items: list[dict[str, object]]) -> bytes:
    out = []
    for it in items:
        parts = [f"<title>{html.escape(str(it['title']), quote=False)}</title>"]
        parts.append(f"<link>{html.escape(str(it['link']))}</link>")
        if it["guid"]:
            perma = "true" if it["guid"] == it["link"] else "false"
            parts.append(f'<guid isPermaLink="{perma}">{html.escape(str(it["guid"]))}</guid>')
        if it["published"]:
            parts.append(f"<pubDate>{_date(it, 'rfc822')}</pubDate>")
        parts.append(f"<dc:creator>{it['author']}</dc:creator><category>News</category>")
        parts.append(f"<description>{_summary_xml(it)}</description>")
        if it["content"]:
            parts.append(f"<content:encoded><![CDATA[{it['content']}]]></content:encoded>")
        out.append("<item>" + "".join(parts) + "</item>\n")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom"><channel>\n'
        f"<title>{title}</title><link>https://site{n}.example/</link>"
        f'<atom:link href="https://site{n}.example/feed" rel="self" type="application/rss+xml"/>'
        f"<description>Feed {n}</description><language>{lang}</language><ttl>{30 + n % 90}</ttl>"
        f"<lastBuildDate>{format_datetime(BASE_TIME, usegmt=True)}</lastBuildDate>\n"
        + "".join(out)
        + "</channel></rss>\n"
    ).encode()


def _atom(n: int, title: str, lang: str, items: list[dict[str, object]]) -> bytes:
    out = []
    for it in items:
        when = _date(it, "iso") if it["published"] else None
        summary_type = "html" if it["summary_html"] else "text"
        summary = str(it["summary"])
        summary = "<p>" + summary + "</p>" if it["summary_html"] else summary
        parts = [
            f"<title>{html.escape(str(it['title']), quote=False)}</title>",
            f'<link rel="alternate" type="text/html" href="{html.escape(str(it["link"]))}"/>',
            f"<id>{html.escape(str(it['guid'] or it['link']))}</id>",
            f"<author><name>{it['author']}</name></author>",
            f'<summary type="{summary_type}">{html.escape(summary, quote=False)}</summary>',
        ]
        if when:
            parts.append(f"<updated>{when}</updated><published>{when}</published>")
        if it["content"]:
            parts.append(
                f'<content type="html">{html.escape(str(it["content"]), quote=False)}</content>'
            )
        out.append("<entry>" + "".join(parts) + "</entry>\n")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">'
        f'<title type="text">{title}</title><id>urn:feed:{n}</id>'
        f'<link rel="self" href="https://site{n}.example/atom"/>'
        f"<updated>{BASE_TIME.isoformat().replace('+00:00', 'Z')}</updated>\n"
        + "".join(out)
        + "</feed>\n"
    ).encode()


def _rss10(n: int, title: str, lang: str, items: list[dict[str, object]]) -> bytes:
    out = []
    for it in items:
        parts = [
            f"<title>{html.escape(str(it['title']), quote=False)}</title>",
            f"<link>{html.escape(str(it['link']))}</link>",
            f"<description>{_summary_xml(it)}</description>",
            f"<dc:creator>{it['author']}</dc:creator>",
        ]
        if it["published"]:
            parts.append(f"<dc:date>{_date(it, 'iso')}</dc:date>")
        if it["content"]:
            parts.append(f"<content:encoded><![CDATA[{it['content']}]]></content:encoded>")
        about = html.escape(str(it["link"]))
        out.append(f'<item rdf:about="{about}">' + "".join(parts) + "</item>\n")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f'<channel rdf:about="https://site{n}.example/rss"><title>{title}</title>'
        f"<link>https://site{n}.example/</link><description>Feed</description>"
        f"<dc:language>{lang}</dc:language></channel>\n" + "".join(out) + "</rdf:RDF>\n"
    ).encode()


def _json(n: int, title: str, lang: str, items: list[dict[str, object]]) -> bytes:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": html.unescape(title),
        "language": lang,
        "items": [
            {
                "id": str(it["guid"] or it["link"]),
                "url": it["link"],
                "title": it["title"],
                "summary": it["summary"],
                "content_html": it["content"] or f"<p>{it['summary']}</p>",
                **({"date_published": _date(it, "iso")} if it["published"] else {}),
            }
            for it in items
        ],
    }
    return json.dumps(doc, ensure_ascii=False).encode()
