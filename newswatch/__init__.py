"""newswatch: a self-hosted, scheduled news-monitoring crawler."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/newswatch/newswatch"
