"""The environment a newswatch subprocess gets in tests."""

from __future__ import annotations

import os


def clean_env(**values: str) -> dict[str, str]:
    """The caller's environment without any NEWSWATCH_* variable (a developer's
    own settings must not leak into a test), plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    env.update(values)
    return env
