"""One Settings object, read once in the entry point and passed down.

Sources, lowest priority first: defaults, a TOML file (`--config` or
NEWSWATCH_CONFIG; keys are the variable names without the NEWSWATCH_ prefix,
in lower case), then the environment.
"""

from __future__ import annotations

import socket
import tomllib
from datetime import time as datetime_time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from crawler.addresses import AddressPolicy, AddressPolicyError
from newswatch import PROJECT_URL, __version__


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

    @field_validator("allow_private_addresses", mode="before")
    @classmethod
    def _bool_or_list(cls, v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return ",".join(str(x) for x in v)
        return str(v)

    @field_validator("daily_digest_at")
    @classmethod
    def _hh_mm(cls, v: str) -> str:
        try:
            datetime_time.fromisoformat(v)
        except ValueError as e:
            raise ValueError(f"{v!r} is not a time of day like 08:00 (UTC)") from e
        return v

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
        raise ConfigError(f"NEWSWATCH_{loc.upper()}: {err['msg']}") from e
    except AddressPolicyError as e:
        raise ConfigError(str(e)) from e
    return settings
