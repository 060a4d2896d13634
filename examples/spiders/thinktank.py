"""A think tank's publication list, page by page: a newswatch spider source.

    newswatch source add institute-pubs --kind spider \\
        --spider examples/spiders/thinktank.py:PublicationsSpider

`url` is the publication list; when the source has an http(s) URL, newswatch
passes it as the `url` argument instead. Each item needs `url` and `title`;
`summary`, `text`, `published` (ISO 8601) and `language` are optional.
newswatch applies its address policy, robots.txt and per-host politeness to
every request this spider makes.
"""

from collections.abc import Iterator
from typing import Any

import scrapy


class PublicationsSpider(scrapy.Spider):
    name = "publications"
    url = "https://www.example-institute.org/publications"
    max_pages = 5

    async def start(self) -> Any:
        yield scrapy.Request(self.url, callback=self.parse, cb_kwargs={"page": 1})

    def parse(self, response: Any, page: int) -> Iterator[Any]:
        for href in response.css("ul.publications li a::attr(href)").getall():
            yield response.follow(href, callback=self.parse_publication)
        next_page = response.css("a[rel=next]::attr(href)").get()
        if next_page and page < self.max_pages:
            yield response.follow(next_page, callback=self.parse, cb_kwargs={"page": page + 1})

    def parse_publication(self, response: Any) -> Iterator[dict[str, Any]]:
        yield {
            "url": response.url,
            "title": response.css("article h1::text").get("").strip(),
            "summary": response.css("article p.lede::text").get("").strip(),
            "text": "\n".join(response.css("article div.body p::text").getall()),
            "published": response.css("article time::attr(datetime)").get(),
            "language": response.css("html::attr(lang)").get(),
        }
