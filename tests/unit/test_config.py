from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from alerts.secrets import mask_secret
from crawler.addresses import AddressPolicy
from newswatch.config import ConfigError, load_settings


def test_defaults() -> None:
    s = load_settings(env={})
    assert s.database_url == "sqlite:///newswatch.db"
    assert s.fetch_timeout == 30 and s.max_response_bytes == 10_000_000
    assert s.effective_user_agent.startswith("newswatch/0.")
    assert s.address_policy == AddressPolicy()


def test_private_address_allowlist() -> None:
    policy = load_settings(
        env={"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1,10.8.0.0/16"}
    ).address_policy
    assert policy.permits(ipaddress.ip_address("10.8.3.4"))
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert policy.permits(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not policy.permits(ipaddress.ip_address("127.0.0.2"))
    assert not policy.permits(ipaddress.ip_address("10.9.0.1"))
    assert policy.permits(ipaddress.ip_address("93.184.216.34"))
    assert load_settings(env={"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "true"}).address_policy.allow_all


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "localhost"}, "not an address or CIDR"),
        ({"NEWSWATCH_DAILY_DIGEST_AT": "25:00"}, "NEWSWATCH_DAILY_DIGEST_AT"),
        ({"NEWSWATCH_LOG_FORMAT": "xml"}, "NEWSWATCH_LOG_FORMAT"),
        ({"NEWSWATCH_FETCH_TIMEOUT": "-1"}, "NEWSWATCH_FETCH_TIMEOUT"),
        ({"NEWSWATCH_BOGUS": "1"}, None),  # unknown variables are ignored, not fatal
    ],
)
def test_bad_values_are_one_line(env: dict[str, str], message: str | None) -> None:
    if message is None:
        load_settings(env=env)
        return
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(env=env)
    assert "\n" not in str(err.value)


def test_toml_file_and_environment_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "nw.toml"
    cfg.write_text('database_url = "sqlite:///file.db"\nfetch_timeout = 5\n', encoding="utf-8")
    s = load_settings(cfg, env={"NEWSWATCH_FETCH_TIMEOUT": "7"})
    assert (s.database_url, s.fetch_timeout) == ("sqlite:///file.db", 7)
    s = load_settings(env={"NEWSWATCH_CONFIG": str(cfg)})
    assert s.fetch_timeout == 5
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml", env={})


def test_secrets_are_masked() -> None:
    hook = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXSECRET"
    masked = mask_secret(hook)
    assert "XXXXXXXXXXXX" not in masked and masked.startswith("https://hooks.slack.com")
    s = load_settings(env={"NEWSWATCH_SMTP_URL": "smtp://u:hunter2@mail.example.org"})
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)
