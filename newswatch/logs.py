"""Structured logging on the stdlib: key=value text on a terminal, JSON on demand.

Messages follow "event key=value …" (short event names, a status key).
Secrets never reach a log line: callers mask them (config.mask_secret).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        event, _, rest = msg.partition(" ")
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
        }
        for part in rest.split(" "):
            key, sep, value = part.partition("=")
            if sep and key.isidentifier():
                out[key] = value.strip("'\"")
        out["message"] = msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(fmt: str, *, verbose: bool, quiet: bool = False) -> None:
    """Route logs to stderr. `quiet` keeps only errors: for one-shot commands
    whose own summary already names every failed source."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING)
    for noisy in ("trafilatura", "htmldate", "courlan", "charset_normalizer", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
