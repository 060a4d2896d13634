"""Prometheus metrics of one daemon, on a registry of its own.

A private `CollectorRegistry` (not the global default) keeps tests that build
several daemons in one process independent, and keeps library metrics we did
not choose out of `/metrics`. Counters only ever go up; the outbox backlog is
a gauge refreshed by a job, never by the scrape (a scrape must not hit the
database).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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

    def render(self) -> bytes:
        return generate_latest(self.registry)
