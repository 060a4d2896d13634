"""Spider items and the child's guards, without running a spider."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy import Request
from scrapy.exceptions import IgnoreRequest

from crawler.addresses import AddressPolicy
from crawler.crawl_records import Item, Source
from crawler.fetch import FetchPolicy
from crawler.spider_runner import AddressGuardMiddleware, GuardedResolver, scrapy_settings
from crawler.spiders import SpiderLimits, SpiderRun, child_env, outcome_of, runner_config, to_item

NOW = datetime(2025, 7, 10, tzinfo=UTC)


def test_a_full_item() -> None:
    item = to_item(
        {
            "url": "https://Example.org/a?utm_source=x#top",
            "title": "  Pantsir \n in North Korea ",
            "summary": "Short.",
            "text": "North Korea fielded the Pantsir system near the border.",
            "published": "2025-07-03T10:00:00+02:00",
            "language": "EN-gb",
            "extra": object(),
        },
        NOW,
    )
    assert isinstance(item, Item)
    assert item.url == item.guid == "https://example.org/a"
    assert item.title == "Pantsir in North Korea"
    assert item.published == datetime(2025, 7, 3, 8, tzinfo=UTC)
    assert item.language == "en"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"title": "t"}, "no url"),
        ({"url": "", "title": "t"}, "no url"),
        ({"url": 42, "title": "t"}, "no url"),
        ({"url": "ftp://e.org/a", "title": "t"}, "bad url"),
        ({"url": "javascript:alert(1)", "title": "t"}, "bad url"),
        ({"url": "file:///etc/passwd", "title": "t"}, "bad url"),
        ({"url": "/relative", "title": "t"}, "bad url"),
        ({"url": "https://e.org/" + "a" * 3000, "title": "t"}, "url too long"),
        ({"url": "https://e.org/a"}, "no title"),
        ({"url": "https://e.org/a", "title": " \n "}, "no title"),
        ({"url": "https://e.org/a", "title": ["a"]}, "no title"),
        ({"url": "https://e.org/a", "title": "x" * 1001}, "title longer"),
        ({"url": "https://e.org/a", "title": "t", "summary": "s" * 20_001}, "summary longer"),
        ({"url": "https://e.org/a", "title": "t", "text": 5}, "text is not a string"),
        (["https://e.org/a", "t"], "not an object"),
        (None, "not an object"),
    ],
)
def test_junk_items_have_a_reason(data: object, reason: str) -> None:
    result = to_item(data, NOW)
    assert isinstance(result, str) and reason in result


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["url", "title", "summary", "text", "published", "language"]),
        st.none()
        | st.text(max_size=30)
        | st.sampled_from(["https://e.org/a", "http://e.org/b?utm_source=x", "ftp://e.org/"])
        | st.integers(),
    )
)
def test_to_item_never_raises_and_items_are_sane(data: dict[str, object]) -> None:
    result = to_item(data, NOW)
    if isinstance(result, Item):
        assert result.url.startswith(("http://", "https://")) and result.title
        assert result.published <= NOW and result.published.tzinfo is not None


def test_dates_in_the_future_or_unreadable_become_the_fetch_time() -> None:
    for published in ("2999-01-01", "soon", 17, None):
        item = to_item({"url": "https://e.org/a", "title": "t", "published": published}, NOW)
        assert isinstance(item, Item) and item.published == NOW


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "file:///etc/passwd",
        "data:text/html,<p>x</p>",
        "ftp://127.0.0.1/",
        "s3://bucket/key",
    ],
)
def test_middleware_refuses_private_addresses_and_other_schemes(url: str) -> None:
    middleware = AddressGuardMiddleware(AddressPolicy(allowed=()))
    with pytest.raises(IgnoreRequest, match=r"refused|unsupported URL scheme"):
        middleware.process_request(Request(url))


def test_middleware_refuses_https_to_http_redirects_and_passes_public_urls() -> None:
    middleware = AddressGuardMiddleware(AddressPolicy())
    assert middleware.process_request(Request("https://example.org/a")) is None
    downgraded = Request("http://example.org/b", meta={"redirect_urls": ["https://example.org/a"]})
    with pytest.raises(IgnoreRequest, match="https to http"):
        middleware.process_request(downgraded)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "nonsense"])
def test_resolver_refuses_resolved_private_addresses(address: str) -> None:
    from twisted.internet.error import DNSLookupError

    resolver = GuardedResolver.__new__(GuardedResolver)
    resolver.policy = AddressPolicy()
    with pytest.raises(DNSLookupError, match="refused address"):
        resolver._check(address, "rebinding.example")
    assert resolver._check("93.184.216.34", "example.org") == "93.184.216.34"


def test_policy_becomes_scrapy_settings() -> None:
    policy = FetchPolicy(
        max_bytes=123_456, user_agent="nw-test", per_host_delay=2.5, per_host_concurrency=3
    )
    source = Source(1, "s", "https://example.org/", "spider", 900, spider="x:Y")
    config = runner_config(source, policy, SpiderLimits(60.0, 40))
    settings = scrapy_settings(config)
    assert config["args"] == {"url": "https://example.org/"}
    assert settings["DOWNLOAD_MAXSIZE"] == 123_456
    assert settings["DOWNLOAD_DELAY"] == 2.5 and settings["RANDOMIZE_DOWNLOAD_DELAY"] is False
    assert settings["CONCURRENT_REQUESTS_PER_DOMAIN"] == 3
    assert settings["CLOSESPIDER_TIMEOUT"] == 60.0 and settings["CLOSESPIDER_ITEMCOUNT"] == 40
    assert settings["ROBOTSTXT_OBEY"] is True and settings["TELNETCONSOLE_ENABLED"] is False
    assert settings["USER_AGENT"] == "nw-test" and settings["HTTPPROXY_ENABLED"] is False


def test_child_env_drops_secrets_and_proxies() -> None:
    env = child_env(
        {
            "PATH": "/usr/bin",
            "NEWSWATCH_DATABASE_URL": "postgresql://u:pw@h/db",
            "HTTPS_PROXY": "http://p:3128",
            "http_proxy": "http://p:3128",
            "AWS_SECRET_ACCESS_KEY": "x",
        }
    )
    assert env == {"PATH": "/usr/bin"}


SOURCE = Source(1, "s", "https://example.org/", "spider", 900, spider="x:Y")
ITEM = Item("https://e.org/a", "https://e.org/a", "t", "", "", NOW, None, "h")


@pytest.mark.parametrize(
    ("run", "status", "reason"),
    [
        (SpiderRun(killed="spider did not finish within 9s and was killed"), "failed", "killed"),
        (SpiderRun(returncode=2), "failed", "exited with code 2"),
        (SpiderRun(status={"errors": 1, "last_error": "KeyError: 'x'"}), "failed", "KeyError"),
        (SpiderRun(status={"refused": 3, "last_refused": "refused address"}), "failed", "refused"),
        (SpiderRun(status={}, junk=2, first_junk="no url"), "failed", "2 invalid items (no url)"),
        (SpiderRun(status={"responses": {"404": 2}}), "failed", "HTTP 404 x2"),
        (SpiderRun(status={"robots_forbidden": 4}), "failed", "robots.txt forbids"),
        (SpiderRun(status={"responses": {"200": 1}}), "ok", None),
        (SpiderRun(items={ITEM.url: ITEM}, status={"errors": 1}), "ok", None),
        (SpiderRun(items={ITEM.url: ITEM}, returncode=-9), "failed", "code -9"),
        (SpiderRun(items={ITEM.url: ITEM}, killed="killed", status={}), "failed", "killed"),
    ],
)
def test_outcome_of_a_run(run: SpiderRun, status: str, reason: str | None) -> None:
    outcome = outcome_of(SOURCE, run)
    assert outcome.status == status
    if reason is not None:
        assert outcome.error is not None and reason in outcome.error
