"""NEWSWATCH_STORY_WINDOW and NEWSWATCH_STORY_ENCODER: parsed once by the root,
bad values are one-line ConfigErrors; the encoder slot loads lazily, once."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from newswatch.app import EncoderSlot
from newswatch.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("text", "window"),
    [("72h", timedelta(hours=72)), ("2d", timedelta(days=2)), ("1h30m", timedelta(minutes=90))],
)
def test_story_window_is_a_duration(text: str, window: timedelta) -> None:
    assert load_settings(env={"NEWSWATCH_STORY_WINDOW": text}).story_window_delta == window
    assert load_settings(env={}).story_window_delta == timedelta(hours=72)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NEWSWATCH_STORY_WINDOW", "soon"),
        ("NEWSWATCH_STORY_WINDOW", "0"),
        ("NEWSWATCH_STORY_WINDOW", "-3h"),
        ("NEWSWATCH_STORY_WINDOW", "9" * 60),
        ("NEWSWATCH_STORY_ENCODER", "bert"),
        ("NEWSWATCH_STORY_ENCODER", ""),
    ],
)
def test_bad_story_settings_are_one_line_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env={name: value})
    assert "\n" not in str(e.value) and "story" in str(e.value).lower()


def test_the_encoder_slot_loads_once_and_hashing_needs_no_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slot = EncoderSlot("hashing")
    with caplog.at_level(logging.INFO, logger="newswatch"):
        first = slot()
        assert slot() is first and first.name == "char3-hash"
    assert [r.getMessage() for r in caplog.records].count(
        "story_encoder status=ok encoder=char3-hash"
    ) == 1
