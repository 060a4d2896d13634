"""start_soon (scheduler.background): the one way a crawl starts one-time
builds early; the thread is not a daemon, and a failure is one debug line
on the caller's logger, never an exception in the thread."""

from __future__ import annotations

import logging
import threading

import pytest

from scheduler.background import start_soon


def test_the_work_runs_in_a_named_thread_that_is_not_a_daemon() -> None:
    ran: list[str] = []
    thread = start_soon(
        "newswatch-test-warm",
        lambda: ran.append(threading.current_thread().name),
        "test_warm",
        logging.getLogger("newswatch.test"),
    )
    assert not thread.daemon
    thread.join(10)
    assert ran == ["newswatch-test-warm"]


@pytest.mark.parametrize(
    "error", [RuntimeError("model files are corrupt"), OSError(28, "No space left"), KeyError("x")]
)
def test_a_failure_is_one_debug_line_on_the_callers_logger(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []
    hook, threading.excepthook = threading.excepthook, lambda args: raised.append(args.exc_value)

    def work() -> None:
        raise error

    try:
        with caplog.at_level(logging.DEBUG, logger="newswatch.test"):
            start_soon(
                "newswatch-test-warm", work, "test_warm", logging.getLogger("newswatch.test")
            ).join(10)
    finally:
        threading.excepthook = hook
    assert raised == []
    assert [(r.name, r.levelname) for r in caplog.records] == [("newswatch.test", "DEBUG")]
    assert "test_warm status=failed" in caplog.text
