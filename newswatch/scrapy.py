"""`NewswatchPipeline`: an existing Scrapy project writes into newswatch's database.

    # settings.py of the Scrapy project
    ITEM_PIPELINES = {"newswatch.scrapy.NewswatchPipeline": 800}
    NEWSWATCH_SOURCE = "institute-pubs"          # a source added with newswatch source add
    # NEWSWATCH_DATABASE_URL in the environment (or as a Scrapy setting)

newswatch does not run the spider; the project's own `scrapy crawl` does,
and each item is validated exactly as a newswatch-run spider's item is
(crawler.spiders.to_item: an http(s) `url` and a `title` required, length
caps, dates parsed). Valid items are saved through newswatch's one save
path for polls (`save_outcome`: store new items, match them, record
matches and outbox rows, the source's poll state, in ONE transaction per
batch), so an item is stored once and alerted once however often the
project crawls it. Invalid items are dropped with the reason (DropItem), so
later pipelines of the project never see them.

Saving is synchronous in the reactor thread, in batches of
NEWSWATCH_BATCH_SIZE items (default 50) and at close, which keeps the
transaction count low and is what a Scrapy pipeline may do; an error while
saving fails the crawl loudly rather than losing items quietly.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from crawler.crawl_records import Item, PollOutcome, Source
from crawler.spiders import to_item

if TYPE_CHECKING:
    from newswatch.app import App
    from scheduler.compiled_watchlists import CompiledWatchlists

DEFAULT_BATCH = 50


class NewswatchPipelineError(RuntimeError):
    """The pipeline is misconfigured (no source name, unknown source)."""


class NewswatchPipeline:
    """Scrapy item pipeline; see the module docstring."""

    def __init__(
        self, source_name: str, *, database_url: str | None = None, batch_size: int = DEFAULT_BATCH
    ) -> None:
        if not source_name:
            raise NewswatchPipelineError("NewswatchPipeline needs the setting NEWSWATCH_SOURCE")
        self.source_name = source_name
        self.database_url = database_url
        self.batch_size = max(1, batch_size)
        self.pending: dict[str, Item] = {}
        self.saved = 0
        self._app: App | None = None
        self._source: Source | None = None
        self._compiled: CompiledWatchlists | None = None
        self._rng = random.Random()

    @classmethod
    def from_crawler(cls, crawler: Any) -> NewswatchPipeline:
        settings = crawler.settings
        return cls(
            str(settings.get("NEWSWATCH_SOURCE") or ""),
            database_url=settings.get("NEWSWATCH_DATABASE_URL"),
            batch_size=settings.getint("NEWSWATCH_BATCH_SIZE", DEFAULT_BATCH),
        )

    def open_spider(self, spider: Any = None) -> None:
        from newswatch.app import build_app
        from newswatch.config import load_settings
        from scheduler.compiled_watchlists import ONE_SHOT_BACKEND, load_watchlists
        from storage import sources as source_repo

        settings = load_settings()  # the environment and NEWSWATCH_CONFIG, as the CLI reads them
        if self.database_url:
            settings = settings.model_copy(update={"database_url": self.database_url})
        self._app = build_app(settings)
        try:
            with self._app.session() as s:
                self._source = source_repo.get_source(s, self.source_name)
        except source_repo.SourceNotFound as e:
            self._app.close()
            raise NewswatchPipelineError(
                f"no newswatch source named {self.source_name!r}: add it with newswatch source add"
            ) from e
        self._compiled = load_watchlists(self._app.store, ONE_SHOT_BACKEND)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        from itemadapter import ItemAdapter
        from scrapy.exceptions import DropItem

        app = self._require_app()
        try:
            data = ItemAdapter(item).asdict()
        except TypeError as e:
            raise DropItem(f"newswatch: not an item: {type(item).__name__}") from e
        result = to_item(data, app.now())
        if isinstance(result, str):
            raise DropItem(f"newswatch: {result}")
        self.pending.setdefault(result.url, result)
        if len(self.pending) >= self.batch_size:
            self.flush()
        return item

    def close_spider(self, spider: Any = None) -> None:
        if self._app is None:
            return
        try:
            self.flush()
            from scheduler.crawl import drain_stories

            drain_stories(self._app.crawl_context(), one_shot=True)  # items that matched nothing
        finally:
            self._app.close()
            self._app = None

    def flush(self) -> None:
        """Save the pending items as one poll of the source, in one transaction."""
        from scheduler.crawl import save_outcome

        if not self.pending:
            return
        app, source, compiled = self._require_app(), self._source, self._compiled
        assert source is not None and compiled is not None
        outcome = PollOutcome(source.id, "ok", items=tuple(self.pending.values()))
        new_items, _ = save_outcome(app.crawl_context(), source, outcome, compiled, self._rng)
        self.saved += new_items
        self.pending.clear()

    def _require_app(self) -> App:
        if self._app is None:
            raise NewswatchPipelineError("NewswatchPipeline used before open_spider")
        return self._app
