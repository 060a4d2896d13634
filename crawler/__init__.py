"""Fetching, parsing and normalising sources into items."""


class CrawlError(Exception):
    """Base of every expected crawl failure; the message is one readable line."""
