"""Watchlists, matching and alert delivery."""


class AlertError(Exception):
    """Base of every expected alerting failure; the message is one readable line."""
