"""Log filters: no reconnect storms."""

from __future__ import annotations

import logging
import time

import pytest


def test_reconnect_storm_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    """A broker outage logs one line per interval per template, then says how many it held back."""
    from llmwatch.logfilters import RateLimitRepeats

    logger = logging.getLogger("test.reconnect")
    limiter = RateLimitRepeats(("Unable connect to node",), interval_s=0.2)
    logger.addFilter(limiter)
    try:
        with caplog.at_level(logging.INFO, logger="test.reconnect"):
            for _ in range(1000):
                logger.error("Unable connect to node with id %s: %s", 1, "refused")
            logger.error("something else")
            time.sleep(0.25)
            logger.error("Unable connect to node with id %s: %s", 1, "refused")
        lines = [r.getMessage() for r in caplog.records]
        assert lines[0] == "Unable connect to node with id 1: refused"
        assert lines[1] == "something else"
        assert lines[2].endswith("(999 similar lines in the last 0.2 s held back)")
        assert len(lines) == 3
    finally:
        logger.removeFilter(limiter)


def test_the_limit_sits_on_the_logger_aiokafkas_client_logs_on(caplog: pytest.LogCaptureFixture) -> None:
    """The filter must hang on the logger object aiokafka's client really uses: keyed by a wrong name it never saw
    a record (a worker logged 27,695 'Unable connect to node' lines in a 16 s broker outage)."""
    import aiokafka.client

    from llmwatch.logfilters import RateLimitRepeats, install_reconnect_filters

    install_reconnect_filters()
    client_log = aiokafka.client.log
    assert any(isinstance(f, RateLimitRepeats) for f in client_log.filters)
    with caplog.at_level(logging.INFO, logger=client_log.name):
        for _ in range(500):
            client_log.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connect call failed")
    assert len([r for r in caplog.records if r.getMessage().startswith("Unable connect")]) <= 1
