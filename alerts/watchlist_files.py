"""Watchlist files (YAML) to records and back, with clear one-line errors.

Parsing is pure: it reads text, never the environment. `${NAME}` references
are kept verbatim so that `export` writes back what was imported; they are
resolved by `resolve_refs` only where a value is used (delivery).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import yaml

from alerts import AlertError
from alerts.alert_records import (
    Channel,
    Digest,
    Query,
    Recipient,
    Rule,
    StoryMode,
    Term,
    Watchlist,
)
from alerts.matching.engine import check_phrase, check_rule
from alerts.matching.query_parser import QuerySyntaxError
from alerts.yamlfiles import YamlProblem, line_of, load_yaml

T = TypeVar("T")

# Caps that keep one file's cost (memory to import, compile and export) bounded.
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_WATCHLISTS_PER_FILE = 1_000
MAX_TERM_CHARS = 300
MAX_RULES_PER_WATCHLIST = 20_000
MAX_ALIASES_PER_TERM = 200
MAX_SPELLINGS_PER_WATCHLIST = 50_000
NAME_RE = re.compile(r"^[\w][\w .:@+-]{0,99}$", re.UNICODE)
LANG_RE = re.compile(r"^[a-z]{2,3}$")
EMAIL_RE = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+$")
REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
CHANNELS: tuple[Channel, ...] = ("email", "slack", "webhook")
DIGESTS: tuple[Digest, ...] = ("none", "hourly", "daily")
STORY_MODES: tuple[StoryMode, ...] = ("each", "fold")
WATCHLIST_KEYS = {
    "name",
    "terms",
    "exclude",
    "languages",
    "notify",
    "digest",
    "stories",
    "examples",
}


class WatchlistFileError(AlertError):
    """A watchlist file is wrong; the message names the file position and the problem."""


_line = line_of


def parse_watchlists(text: str) -> list[Watchlist]:
    """Parse a watchlist file; raise WatchlistFileError naming the line.

    Whatever parses here compiles: every term, alias, query word and
    exclusion goes through the matcher's own `check_rule` / `check_phrase`.
    """
    try:
        doc = load_yaml(text, max_bytes=MAX_FILE_BYTES)
    except YamlProblem as e:
        raise WatchlistFileError(str(e)) from e
    if not isinstance(doc, dict) or "watchlists" not in doc:
        raise WatchlistFileError("line 1: the file must be a mapping with a 'watchlists' list")
    unknown = set(doc) - {"watchlists"}
    if unknown:
        raise WatchlistFileError(f"line {_line(doc, 1)}: unknown key {sorted(unknown)[0]!r}")
    entries = doc["watchlists"]
    if not isinstance(entries, list) or not entries:
        raise WatchlistFileError(f"line {_line(doc, 1)}: 'watchlists' must be a non-empty list")
    if len(entries) > MAX_WATCHLISTS_PER_FILE:
        raise WatchlistFileError(
            f"line {_line(entries, 1)}: more than {MAX_WATCHLISTS_PER_FILE} watchlists in one file"
        )
    result: list[Watchlist] = []
    seen: dict[str, int] = {}
    for entry in entries:
        wl = _parse_watchlist(entry, _line(entries, 1))
        line = _line(entry, 1)
        if wl.name in seen:
            raise WatchlistFileError(
                f"line {line}: duplicate watchlist name {wl.name!r} (first at line {seen[wl.name]})"
            )
        seen[wl.name] = line
        result.append(wl)
    return result


def _parse_watchlist(entry: Any, parent_line: int) -> Watchlist:
    if not isinstance(entry, dict):
        raise WatchlistFileError(f"line {parent_line}: each watchlist must be a mapping")
    line = _line(entry, parent_line)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise WatchlistFileError(f"line {line}: watchlist needs a 'name'")
    name = unicodedata.normalize("NFC", name.strip())
    where = f"line {line}: watchlist {name!r}"
    if not NAME_RE.match(name):
        raise WatchlistFileError(f"{where}: name may hold letters, digits, space and . : @ + - _")
    unknown = set(entry) - WATCHLIST_KEYS
    if unknown:
        raise WatchlistFileError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    rules = _parse_rules(entry.get("terms"), where, line)
    exclude = _strings(entry.get("exclude"), f"{where}: exclude", limit=MAX_TERM_CHARS)
    for phrase in exclude:
        _compiles(check_phrase, phrase, f"{where}: exclude")
    spellings = len(exclude) + sum(1 + len(r.aliases) if isinstance(r, Term) else 1 for r in rules)
    if spellings > MAX_SPELLINGS_PER_WATCHLIST:
        raise WatchlistFileError(
            f"{where}: more than {MAX_SPELLINGS_PER_WATCHLIST} terms, aliases and exclusions"
        )
    digest = entry.get("digest", "none")
    if not isinstance(digest, str) or digest not in DIGESTS:
        raise WatchlistFileError(f"{where}: digest must be one of none, hourly, daily")
    stories = entry.get("stories", "each")
    if not isinstance(stories, str) or stories not in STORY_MODES:
        raise WatchlistFileError(f"{where}: stories must be fold or each")
    examples = _mapping(entry.get("examples"), f"{where}: examples", {"match", "no_match"})
    return Watchlist(
        name=name,
        rules=rules,
        exclude=exclude,
        languages=_languages(entry.get("languages"), where),
        notify=_parse_notify(entry.get("notify"), where),
        digest=digest,
        stories=stories,
        examples_match=_strings(examples.get("match"), f"{where}: examples.match"),
        examples_no_match=_strings(examples.get("no_match"), f"{where}: examples.no_match"),
    )


def _parse_rules(raw: Any, where: str, line: int) -> tuple[Rule, ...]:
    if not isinstance(raw, list) or not raw:
        raise WatchlistFileError(f"{where}: 'terms' must be a non-empty list")
    if len(raw) > MAX_RULES_PER_WATCHLIST:
        raise WatchlistFileError(f"{where}: more than {MAX_RULES_PER_WATCHLIST} terms")
    rules: list[Rule] = []
    for i, item in enumerate(raw, 1):
        here = f"{where}: term {i}"
        if isinstance(item, str):
            rules.append(_compiles(check_rule, Term(_term_text(item, here)), here))
            continue
        if not isinstance(item, dict):
            raise WatchlistFileError(f"{here}: a term is text or a mapping with 'term' or 'query'")
        here = f"line {_line(item, line)}: {where.split(': ', 1)[1]}: term {i}"
        case = item.get("case_sensitive")
        if case is not None and not isinstance(case, bool):
            raise WatchlistFileError(f"{here}: case_sensitive must be true or false")
        if ("term" in item) == ("query" in item):
            raise WatchlistFileError(f"{here}: give exactly one of 'term' or 'query'")
        if "query" in item:
            _only_keys(item, {"query", "case_sensitive"}, here)
            text = _term_text(item["query"], here)
            rules.append(_compiles(check_rule, Query(text, case_sensitive=case), here))
        else:
            _only_keys(item, {"term", "aliases", "case_sensitive"}, here)
            aliases, alias_case = _aliases(item.get("aliases"), f"{here}: aliases")
            if len(aliases) > MAX_ALIASES_PER_TERM:
                raise WatchlistFileError(f"{here}: more than {MAX_ALIASES_PER_TERM} aliases")
            term = Term(_term_text(item["term"], here), aliases, case, alias_case)
            rules.append(_compiles(check_rule, term, here))
    return tuple(rules)


def _aliases(raw: Any, where: str) -> tuple[tuple[str, ...], tuple[bool | None, ...]]:
    """`aliases:` entries: text, or `{alias: text, case_sensitive: bool}`;
    the second tuple is empty unless some alias has its own case rule."""
    if not isinstance(raw, list):
        return _strings(raw, where, limit=MAX_TERM_CHARS), ()
    texts: list[Any] = []
    cases: list[bool | None] = []
    for entry in raw:
        if isinstance(entry, dict):
            _only_keys(entry, {"alias", "case_sensitive"}, where)
            case = entry.get("case_sensitive")
            if "alias" not in entry or (case is not None and not isinstance(case, bool)):
                raise WatchlistFileError(
                    f"{where}: an alias is text or {{alias: text, case_sensitive: true|false}}"
                )
            texts.append(entry["alias"])
            cases.append(case)
        else:
            texts.append(entry)
            cases.append(None)
    aliases = _strings(texts, where, limit=MAX_TERM_CHARS)
    return aliases, tuple(cases) if any(c is not None for c in cases) else ()


def _compiles(check: Callable[[T], None], value: T, where: str) -> T:
    """`value` if the matcher's `check` accepts it; else a WatchlistFileError at `where`."""
    try:
        check(value)
    except QuerySyntaxError as e:
        raise WatchlistFileError(f"{where}: invalid query: {e}") from e
    except AlertError as e:  # e.g. a term of punctuation only: it has no search key
        raise WatchlistFileError(f"{where}: {e}") from e
    return value


def _term_text(value: Any, where: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise WatchlistFileError(f"{where}: must be text")
    text = str(value).strip()
    if not text or text == "*":
        raise WatchlistFileError(f"{where}: empty term")
    if len(text) > MAX_TERM_CHARS:
        raise WatchlistFileError(f"{where}: longer than {MAX_TERM_CHARS} characters")
    return text


def _only_keys(item: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(item) - allowed
    if unknown:
        raise WatchlistFileError(f"{where}: unknown key {sorted(unknown)[0]!r}")


def _mapping(raw: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise WatchlistFileError(f"{where} must be a mapping")
    _only_keys(raw, allowed, where)
    return raw


def _strings(raw: Any, where: str, *, limit: int | None = None) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise WatchlistFileError(f"{where} must be a list of text")
    out = []
    for value in raw:
        out.append(_term_text(value, where) if limit else _plain_text(value, where))
    return tuple(out)


def _plain_text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WatchlistFileError(f"{where}: entries must be non-empty text")
    return value


def _languages(raw: Any, where: str) -> tuple[str, ...]:
    langs = _strings(raw, f"{where}: languages")
    for lang in langs:
        if not LANG_RE.match(lang):
            raise WatchlistFileError(
                f"{where}: language {lang!r} is not a lower-case ISO 639 code like en, ko, zh, ru"
            )
    return langs


def _parse_notify(raw: Any, where: str) -> tuple[Recipient, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise WatchlistFileError(f"{where}: notify must be a list")
    out: list[Recipient] = []
    for i, entry in enumerate(raw, 1):
        here = f"{where}: notify {i}"
        if not isinstance(entry, dict):
            raise WatchlistFileError(f"{here}: must be a mapping like {{email: a@b.org}}")
        channels = [c for c in CHANNELS if c in entry]
        if len(channels) != 1:
            raise WatchlistFileError(f"{here}: give exactly one of email, slack, webhook")
        channel = channels[0]
        _only_keys(entry, {channel, "secret"} if channel == "webhook" else {channel}, here)
        target = entry[channel]
        if not isinstance(target, str) or not target.strip():
            raise WatchlistFileError(f"{here}: {channel} needs a value")
        target = target.strip()
        _check_target(channel, target, here)
        secret = entry.get("secret")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise WatchlistFileError(f"{here}: secret must be text")
        for value in (target, secret or ""):
            if problem := ref_problem(value):
                raise WatchlistFileError(f"{here}: {problem}")
        recipient = Recipient(channel, target, secret)
        if recipient in out:
            raise WatchlistFileError(f"{here}: duplicate recipient")
        out.append(recipient)
    return tuple(out)


def _check_target(channel: Channel, target: str, where: str) -> None:
    if REF_RE.fullmatch(target):
        return
    if channel == "email":
        if not EMAIL_RE.match(target):
            raise WatchlistFileError(f"{where}: {target!r} is not an email address")
    elif not re.match(r"^https?://[^\s/]+", target, re.IGNORECASE):
        raise WatchlistFileError(f"{where}: {channel} must be an http(s) URL")


OWN_PREFIX = "NEWSWATCH_"


def ref_problem(value: str) -> str | None:
    """Why `value` may not hold a `${NAME}` reference, or None when it may.

    The rule (README, "Secrets in watchlists"): a reference is the whole value
    (`${NAME}` and nothing around it), so a file cannot splice a variable into
    a URL it controls (`https://evil/?x=${DB_PASSWORD}`); and NAME never starts
    with `NEWSWATCH_` in any case (pydantic-settings reads the configuration
    case-insensitively), so newswatch's own configuration is never reachable.
    Pure: the operator's allowlist (`reference_allowed`) is checked apart.
    """
    if "${" not in value and not REF_RE.search(value):
        return None
    m = REF_RE.fullmatch(value)
    if m is None:
        return "a ${NAME} reference must be the whole value, with nothing around it"
    if m.group(1).upper().startswith(OWN_PREFIX):
        return f"${{{m.group(1)}}} names newswatch's own configuration, which is never reachable"
    return None


def reference_allowed(name: str, allow: str) -> bool:
    """Whether the operator's NEWSWATCH_WATCHLIST_ENV permits `name`: empty
    permits every name outside NEWSWATCH_*; otherwise a comma-separated list of
    exact names and `PREFIX*` patterns. NEWSWATCH_* is refused either way."""
    if name.upper().startswith(OWN_PREFIX):
        return False
    patterns = [p.strip() for p in allow.split(",") if p.strip()]
    if not patterns:
        return True
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)


def reference_env(environ: Mapping[str, str], allow: str) -> dict[str, str]:
    """The part of the environment `${NAME}` may read (see `reference_allowed`)."""
    return {k: v for k, v in environ.items() if reference_allowed(k, allow)}


def resolve_refs(value: str, env: Mapping[str, str]) -> str:
    """The value with its `${NAME}` reference replaced by the environment's
    value. A value breaking `ref_problem`'s rule, or naming a variable that is
    unset (or outside the allowlist, already filtered out of `env`), is an
    error: the rule holds at delivery too, for rows stored before it existed."""
    problem = ref_problem(value)
    if problem:
        raise AlertError(problem)
    m = REF_RE.fullmatch(value)
    if m is None:
        return value
    if m.group(1) not in env:
        raise AlertError(
            f"environment variable {m.group(1)} is not set "
            "(or not permitted by NEWSWATCH_WATCHLIST_ENV)"
        )
    return env[m.group(1)]


def dump_watchlists(watchlists: Iterable[Watchlist]) -> str:
    """YAML text that `parse_watchlists` reads back to the same records."""
    return yaml.safe_dump(
        {"watchlists": [watchlist_to_dict(w) for w in watchlists]},
        allow_unicode=True,
        sort_keys=False,
        width=100,
    )


def watchlist_to_dict(w: Watchlist) -> dict[str, Any]:
    out: dict[str, Any] = {"name": w.name, "terms": [_rule_to_yaml(r) for r in w.rules]}
    if w.exclude:
        out["exclude"] = list(w.exclude)
    if w.languages:
        out["languages"] = list(w.languages)
    if w.notify:
        out["notify"] = [_recipient_to_yaml(r) for r in w.notify]
    out["digest"] = w.digest
    out["stories"] = w.stories
    if w.examples_match or w.examples_no_match:
        ex: dict[str, Any] = {}
        if w.examples_match:
            ex["match"] = list(w.examples_match)
        if w.examples_no_match:
            ex["no_match"] = list(w.examples_no_match)
        out["examples"] = ex
    return out


def _rule_to_yaml(rule: Rule) -> Any:
    if isinstance(rule, Query):
        q: dict[str, Any] = {"query": rule.query}
        if rule.case_sensitive is not None:
            q["case_sensitive"] = rule.case_sensitive
        return q
    if not rule.aliases and rule.case_sensitive is None:
        return rule.term
    t: dict[str, Any] = {"term": rule.term}
    if rule.aliases:
        t["aliases"] = rule.alias_entries()
    if rule.case_sensitive is not None:
        t["case_sensitive"] = rule.case_sensitive
    return t


def _recipient_to_yaml(r: Recipient) -> dict[str, str]:
    out: dict[str, str] = {r.channel: r.target}
    if r.secret is not None:
        out["secret"] = r.secret
    return out
