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


def test_rebalance_lines_are_demoted_and_explained(caplog: pytest.LogCaptureFixture) -> None:
    """A normal rebalance's commit race and an open window's held offsets are not ERRORs (issue 22)."""
    import aiokafka.consumer.group_coordinator as coordinator

    from llmwatch.logfilters import install_rebalance_filters

    install_rebalance_filters()
    install_rebalance_filters()  # idempotent
    faust_log = logging.getLogger("faust.transport.drivers.aiokafka")
    with caplog.at_level(logging.DEBUG):
        coordinator.log.error(
            "OffsetCommit failed for group %s due to group error (%s), will rejoin", "g", "IllegalGenerationError"
        )
        faust_log.error("Has not committed %r at all since worker start (started %s).", "tp", "1 minute ago")
        coordinator.log.error("Heartbeat failed: %r", "boom")  # anything else keeps its level
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels[0][0] == "INFO" and "commit raced a rebalance" in levels[0][1]
    assert levels[1][0] == "WARNING" and "open" in levels[1][1]
    assert levels[2] == ("ERROR", "Heartbeat failed: 'boom'")
