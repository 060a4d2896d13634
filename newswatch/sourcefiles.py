"""Source lists as OPML 2.0 or YAML, both ways. Pure: text in, records out.

OPML readers ignore attributes they do not know, so newswatch's own settings
travel as plain attributes (`kind`, `every`, `links`, `spider`) and survive
a round trip; a plain OPML from another reader imports as feeds. A spider
source needs no URL: it is stored as `spider:NAME` unless one is given.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import yaml
from lxml import etree

from alerts.yamlfiles import YamlProblem, line_of, load_yaml
from crawler import CrawlError
from crawler.links import check_css
from newswatch.durations import format_duration, parse_interval

DEFAULT_EVERY = 900
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_SOURCES_PER_FILE = 20_000
KINDS = ("feed", "page", "sitemap", "spider")
SPIDER_URL_SCHEME = "spider:"


class SourceFileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    url: str
    kind: str | None = None
    every_seconds: int = DEFAULT_EVERY
    links_css: str | None = None
    tags: tuple[str, ...] = ()  # an OPML's folders, outermost first
    spider: str | None = None  # kind spider: "module:Class" or "/path/file.py:Class"


def check_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host; else SourceFileError."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as e:
        raise SourceFileError(f"{url!r} is not a valid URL") from e
    if parts.scheme.lower() not in ("http", "https"):
        raise SourceFileError(f"{url!r} is not an http(s) URL")
    if not host:
        raise SourceFileError(f"{url!r} has no host")
    if any(c.isspace() for c in url):
        raise SourceFileError(f"{url!r} contains whitespace")
    return url


def name_from_url(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "source").removeprefix("www.")
    path = re.sub(r"[^\w]+", "-", parts.path).strip("-")
    return f"{host}/{path}"[:120] if path and path not in ("rss", "feed", "index-html") else host


def check_name(name: str) -> str:
    """The name in NFC, or SourceFileError.

    NFC so that `café` typed on two keyboards (precomposed or with a
    combining accent) is one source; control and format characters
    (including the bidi overrides U+202A..E, U+2066..9, U+200E/F) are refused
    because they make a name display as another one in lists and alerts.
    """
    name = unicodedata.normalize("NFC", name.strip())
    if not name or len(name) > 200:
        raise SourceFileError(f"{name!r} is not a usable source name")
    bad = next((c for c in name if unicodedata.category(c) in _UNPRINTABLE), None)
    if bad is not None:
        raise SourceFileError(
            f"source name {name!r} holds the control or format character U+{ord(bad):04X}"
        )
    return name


# Control, format (bidi marks and overrides, zero-width), surrogate, private
# use, unassigned, line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def check_kind(kind: str | None) -> str | None:
    if kind in (None, ""):
        return None
    if kind not in KINDS:
        raise SourceFileError(f"kind {kind!r} must be one of {', '.join(KINDS)}")
    return kind


def check_spider(spec: str | None, kind: str | None) -> str | None:
    """A spider spec of the form `package.module:Class` or `path/to/file.py:Class`.

    Only the form is checked: loading it would run the user's code in this
    process (crawler.spider_runner loads it in a child, at each run)."""
    if spec is None or not spec.strip():
        return None
    spec = spec.strip()
    if kind != "spider":
        raise SourceFileError("--spider is only for sources of kind spider")
    where, _, cls = spec.rpartition(":")
    if not where or not cls.isidentifier():
        raise SourceFileError(f"spider {spec!r} must be module:Class or path/to/file.py:Class")
    if where.endswith(".py"):
        if any(c in where for c in "\0\n\r"):
            raise SourceFileError(f"spider {spec!r} has a bad file name")
        return spec
    if not all(part.isidentifier() for part in where.split(".")):
        raise SourceFileError(f"spider {spec!r}: {where!r} is not a module name")
    return spec


def spider_url(name: str, url: str | None) -> str:
    """A spider source's URL: the one given (passed to the spider as `url`), or `spider:NAME`."""
    if url is None or not url.strip() or url.startswith(SPIDER_URL_SCHEME):
        return SPIDER_URL_SCHEME + name
    return check_url(url)


def _spec(
    name: str | None,
    url: str,
    kind: str | None,
    every: str | int | None,
    links: str | None,
    spider: str | None = None,
) -> SourceSpec:
    kind = check_kind(kind)
    if kind == "spider":
        if not name:
            raise SourceFileError("a spider source needs a name")
        name = check_name(name)
        url = spider_url(name, url)
    else:
        url = check_url(url)
    try:
        seconds = DEFAULT_EVERY if every is None or every == "" else parse_interval(every)
    except ValueError as e:
        raise SourceFileError(str(e)) from e
    return SourceSpec(
        name=check_name(name or name_from_url(url)),
        url=url,
        kind=kind,
        every_seconds=seconds,
        links_css=check_links(links),
        spider=check_spider(spider, kind),
    )


def check_links(links: str | None) -> str | None:
    """The `--links` / `links:` CSS selector, checked; None when not given."""
    if links is None or not links.strip():
        return None
    try:
        return check_css(links)
    except CrawlError as e:
        raise SourceFileError(str(e)) from e


def _opml_specs(data: bytes) -> list[SourceSpec]:
    """Sources of an OPML file. libxml2 without entities, DTDs or the network,
    and with its depth (256) and amplification limits; a DOCTYPE with an
    internal subset (entity declarations) is refused outright."""
    if len(data) > MAX_FILE_BYTES:
        raise SourceFileError(f"the file is larger than {MAX_FILE_BYTES:,} bytes")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
    )
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as e:
        raise SourceFileError(f"OPML is not well-formed XML: {e}") from e
    if root.getroottree().docinfo.internalDTD is not None:
        raise SourceFileError("OPML with a DOCTYPE declaring entities is not accepted")
    if root.tag != "opml":
        raise SourceFileError("not an OPML file (the root element is not <opml>)")
    specs = []
    for el in root.iter("outline"):
        url = el.get("xmlUrl") or (el.get("url") if el.get("kind") in ("page", "spider") else None)
        if not url:
            if el.get("type") in ("link",) and el.get("url"):
                url = el.get("url")
            else:
                continue
        kind = el.get("kind") or ("feed" if el.get("xmlUrl") else "page")
        name = el.get("title") or el.get("text")
        try:
            spec = _spec(name, url, kind, el.get("every"), el.get("links"), el.get("spider"))
            specs.append(replace(spec, tags=_folders(el) or _category(el.get("category"))))
        except SourceFileError as e:
            raise SourceFileError(f"OPML line {el.sourceline}: {e}") from e
    return specs


def parse_opml(data: bytes) -> list[SourceSpec]:
    """Sources of an OPML file, names made unique (see `opml_sources`)."""
    return opml_sources(data)[0]


def opml_sources(data: bytes) -> tuple[list[SourceSpec], list[str]]:
    """Sources of an OPML file and one note per renamed source. Readers
    (Feedly, Inoreader) export two feeds of one title as they are; the
    second becomes `Title (2)`, the third `Title (3)`, and so on."""
    return unique_names(_opml_specs(data))


def _folders(el: etree._Element) -> tuple[str, ...]:
    """The titles of the folder outlines `el` sits in, outermost first."""
    out = []
    for parent in el.iterancestors("outline"):
        title = (parent.get("title") or parent.get("text") or "").strip()
        if title and not parent.get("xmlUrl"):
            out.append(" ".join(title.split())[:200])
    return tuple(reversed(out))


def _path_part(tag: str) -> str:
    return tag.replace("/", " ").replace(",", " ")


def _category(value: str | None) -> tuple[str, ...]:
    """The first path of an OPML 2.0 `category` ("/a/b,/c" → ("a", "b"))."""
    first = (value or "").split(",")[0]
    return tuple(" ".join(t.split())[:200] for t in first.split("/") if t.strip())


def unique_names(specs: list[SourceSpec]) -> tuple[list[SourceSpec], list[str]]:
    """`specs` with a repeated name suffixed ` (2)`, ` (3)`…; the notes say which."""
    taken = {s.name for s in specs}
    seen: set[str] = set()
    out, notes = [], []
    for spec in specs:
        if spec.name not in seen:
            seen.add(spec.name)
            out.append(spec)
            continue
        n = 2
        while f"{spec.name} ({n})" in taken or f"{spec.name} ({n})" in seen:
            n += 1
        new = f"{spec.name} ({n})"
        seen.add(new)
        out.append(replace(spec, name=new))
        notes.append(f"a second source named {spec.name!r} ({spec.url}) was renamed {new!r}")
    return out, notes


def parse_yaml(text: str) -> list[SourceSpec]:
    """Sources of a YAML file; every field type-checked, errors name the line."""
    try:
        doc = load_yaml(text, max_bytes=MAX_FILE_BYTES)
    except YamlProblem as e:
        raise SourceFileError(str(e)) from e
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), list):
        raise SourceFileError("line 1: the file must be a mapping with a 'sources' list")
    if set(doc) - {"sources"}:
        raise SourceFileError(f"line 1: unknown key {sorted(set(doc) - {'sources'})[0]!r}")
    entries = doc["sources"]
    if len(entries) > MAX_SOURCES_PER_FILE:
        raise SourceFileError(f"more than {MAX_SOURCES_PER_FILE:,} sources in one file")
    specs = []
    for i, entry in enumerate(entries, 1):
        where = f"line {line_of(entry, line_of(entries, 1))}: source {i}"
        spider_kind = isinstance(entry, dict) and entry.get("kind") == "spider"
        if not isinstance(entry, dict) or ("url" not in entry and not spider_kind):
            raise SourceFileError(f"{where}: needs at least a 'url'")
        unknown = set(entry) - {"name", "url", "kind", "every", "links", "tags", "spider"}
        if unknown:
            raise SourceFileError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        try:
            specs.append(
                _spec(
                    _text(entry, "name"),
                    _text(entry, "url") or "",
                    _text(entry, "kind"),
                    _every(entry.get("every")),
                    _text(entry, "links"),
                    _text(entry, "spider"),
                )
            )
            specs[-1] = replace(specs[-1], tags=_tags(entry.get("tags")))
        except SourceFileError as e:
            raise SourceFileError(f"{where}: {e}") from e
    return _unique(specs)


def _text(entry: dict[str, object], key: str) -> str | None:
    value = entry.get(key)
    if value is None or isinstance(value, str):
        return value
    raise SourceFileError(f"{key} must be text, not {_kind_of(value)}")


def _tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise SourceFileError("tags must be a list of text")
    return tuple(" ".join(t.split())[:200] for t in value)


def _every(value: object) -> str | int | None:
    if value is None or isinstance(value, str) or type(value) is int:
        return value
    raise SourceFileError(f"every must be a duration like 15m, not {_kind_of(value)}")


def _kind_of(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _unique(specs: list[SourceSpec]) -> list[SourceSpec]:
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise SourceFileError(f"duplicate source name {s.name!r}")
        seen.add(s.name)
    return specs


def dump_yaml(specs: list[SourceSpec]) -> str:
    rows = []
    for s in specs:
        row: dict[str, str] = {"name": s.name, "url": s.url}
        if s.kind:
            row["kind"] = s.kind
        row["every"] = format_duration(s.every_seconds)
        if s.links_css:
            row["links"] = s.links_css
        if s.spider:
            row["spider"] = s.spider
        rows.append({**row, "tags": list(s.tags)} if s.tags else row)
    return yaml.safe_dump({"sources": rows}, allow_unicode=True, sort_keys=False)


def dump_opml(specs: list[SourceSpec], title: str = "newswatch sources") -> str:
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    body = etree.SubElement(root, "body")
    for s in specs:
        attrs = {"text": s.name, "title": s.name}
        if s.kind in ("page", "spider"):
            attrs.update(type="link", url=s.url, kind=s.kind)
        else:
            attrs.update(type="rss", xmlUrl=s.url)
            if s.kind:
                attrs["kind"] = s.kind
        attrs["every"] = format_duration(s.every_seconds)
        if s.links_css:
            attrs["links"] = s.links_css
        if s.spider:
            attrs["spider"] = s.spider
        if s.tags:  # OPML 2.0's category: comma-separated, slash-delimited paths
            attrs["category"] = "/" + "/".join(_path_part(t) for t in s.tags)
        etree.SubElement(body, "outline", attrs)
    data: bytes = etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    return data.decode()
