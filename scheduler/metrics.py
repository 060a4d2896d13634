"""Prometheus metrics of one daemon, on a registry of its own.

A private `CollectorRegistry` (not the global default) keeps tests that build
several daemons in one process independent, and keeps library metrics we did
not choose out of `/metrics`. Counters only ever go up; the outbox backlog is
a gauge refreshed by a job, never by the scrape (a scrape must not hit the
database).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from crawler.crawl_records import Source

CONTENT_TYPE = CONTENT_TYPE_LATEST

POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(
            "newswatch_polls", "Sources polled, by outcome.", ["status"], registry=r
        )
        self.poll_failures = Counter(
            "newswatch_poll_failures", "Polls that failed (fetch or parse).", registry=r
        )
        self.poll_seconds = Histogram(
            "newswatch_poll_duration_seconds",
            "Time to poll one source and save its outcome.",
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.polls_in_flight = Gauge("newswatch_polls_in_flight", "Polls running now.", registry=r)
        self.items = Counter("newswatch_items_stored", "New items stored.", registry=r)
        self.matches = Counter("newswatch_matches", "New matches recorded.", registry=r)
        self.alerts_sent = Counter("newswatch_alerts_sent", "Alerts delivered.", registry=r)
        self.alerts_failed = Counter(
            "newswatch_alerts_failed", "Alerts marked failed after the last try.", registry=r
        )
        self.alerts_retried = Counter(
            "newswatch_alerts_retried", "Alert deliveries scheduled for a retry.", registry=r
        )
        self.backlog = Gauge(
            "newswatch_outbox_backlog", "Outbox rows by status.", ["status"], registry=r
        )
        self.database_up = Gauge(
            "newswatch_database_up", "1 when the last database operation worked.", registry=r
        )
        self.job_errors = Counter(
            "newswatch_job_errors", "Unexpected errors in scheduled jobs.", ["job"], registry=r
        )
        self.database_up.set(1)
        self.sources = SourceHealth()
        r.register(self.sources)

    def render(self) -> bytes:
        return generate_latest(self.registry)


# Most sources with a series of their own: a scrape stays small (2 series per
# source) even with tens of thousands of sources; those beyond are counted.
MAX_SOURCE_SERIES = 1000


class SourceHealth(Collector):
    """Per-source health for /metrics, from the polls this daemon saved: no
    database read at scrape time. `newswatch_source_seconds_since_success`
    is computed when scraped (a source never successful since this daemon
    started, with no success before, reports none); label values are
    escaped by prometheus_client, so any source name is safe."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self.state: dict[str, tuple[datetime | None, int]] = {}
        self.dropped = 0

    def polled(self, src: Source, *, failed: bool, deferred: bool, now: datetime) -> None:
        """Record one saved poll as storage.sources.record_poll records it."""
        if deferred:
            return
        if src.name not in self.state and len(self.state) >= MAX_SOURCE_SERIES:
            self.dropped += 1
            return
        if failed:
            self.state[src.name] = (src.last_success_at, src.consecutive_failures + 1)
        else:
            self.state[src.name] = (now, 0)

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        age = GaugeMetricFamily(
            "newswatch_source_seconds_since_success",
            "Seconds since the source's last successful poll.",
            labels=["source"],
        )
        failures = GaugeMetricFamily(
            "newswatch_source_consecutive_failures",
            "Failed polls of the source since its last success.",
            labels=["source"],
        )
        for name, (success, failed) in sorted(self.state.items()):
            if success is not None:
                age.add_metric([name], max(0.0, (now - success).total_seconds()))
            failures.add_metric([name], failed)
        yield age
        yield failures
        yield GaugeMetricFamily(
            "newswatch_source_series_dropped",
            f"Sources beyond the {MAX_SOURCE_SERIES} with series of their own.",
            value=self.dropped,
        )
