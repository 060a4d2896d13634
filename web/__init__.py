"""The read-only web view: aiohttp.web pages and JSON over `storage.views`.

It imports storage/ and alerts/ only (never crawler/ or a use-case); the
composition root builds it and hands it to the daemon or to `newswatch web`.
"""


class WebError(Exception):
    """The web view cannot start as configured (one readable line)."""
