"""Keeping record payloads out of logs at DEBUG, and reconnect storms out of logs at any level.

Kafka client libraries log whole records at DEBUG: aiokafka every produce request and fetch response
(`aiokafka.conn`) and each value it sends, Faust each value it sends. Records hold prompts, responses and
dead letters' raw bytes, so `--loglevel debug` would write raw PII to log files. These filters drop exactly those
lines; the rest of the libraries' debug output (connections, fetch offsets, rebalances) stays.

While a broker is down, aiokafka's producer can retry metadata without back-off and log each failure: the
reliability tests measured ~14,000 lines/s from one gateway. `RateLimitRepeats` lets each such message
template through once per interval and says how many it held back.
"""

from __future__ import annotations

import logging
import threading
import time

#: logger name → fragments of the message templates that carry record contents
PAYLOAD_LINES: dict[str, tuple[str, ...]] = {
    "aiokafka.conn": ("Request to %s", "Response from %s"),
    "aiokafka.producer.producer": ("Sending (key=",),
    "faust.topics": ("send: topic=",),
    "faust.transport.drivers.aiokafka": ("send: topic=",),
}


class DropPayloadLines(logging.Filter):
    """Drops the DEBUG records of one logger whose message template is a payload dump."""

    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG or not isinstance(record.msg, str):
            return True
        return not any(f in record.msg for f in self.fragments)


def install_payload_filters() -> None:
    """Attach the filters to their loggers (idempotent; logger filters outlive later handler configuration)."""
    for name, fragments in PAYLOAD_LINES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropPayloadLines) for f in logger.filters):
            logger.addFilter(DropPayloadLines(fragments))


#: logger name → message templates logged once per attempt while a broker is unreachable
RECONNECT_LINES: dict[str, tuple[str, ...]] = {
    # aiokafka/client.py logs on the logger named "aiokafka", not on its module's name
    "aiokafka": (
        "Unable connect to node",
        "Unable to update metadata",
        "Unable to request metadata",
    ),
}


class RateLimitRepeats(logging.Filter):
    """Passes a record whose template matches `fragments` at most once per `interval_s` per template."""

    def __init__(self, fragments: tuple[str, ...], interval_s: float = 10.0) -> None:
        super().__init__()
        self.fragments = fragments
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        fragment = next((f for f in self.fragments if f in record.msg), None)
        if fragment is None:
            return True
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(fragment, -self.interval_s) < self.interval_s:
                self._held[fragment] = self._held.get(fragment, 0) + 1
                return False
            self._last[fragment] = now
            held = self._held.pop(fragment, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar lines in the last {self.interval_s:g} s held back)"
        return True


def install_reconnect_filters(interval_s: float = 10.0) -> None:
    """Attach the rate limits to their loggers (idempotent)."""
    for name, fragments in RECONNECT_LINES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimitRepeats) for f in logger.filters):
            logger.addFilter(RateLimitRepeats(fragments, interval_s))


#: logger name → (fragment of the message template, level it is logged at instead, what the line means). Lines that
#: every normal rebalance of a consumer group, or an open window, prints at ERROR (issue 22).
REBALANCE_LINES: dict[str, tuple[tuple[str, int, str], ...]] = {
    "aiokafka.consumer.group_coordinator": (
        (
            "error (%s), will rejoin",  # IllegalGenerationError / UnknownMemberIdError / RebalanceInProgressError
            logging.INFO,
            "a commit raced a rebalance of the group: normal; nothing is lost, the partitions are read again from "
            "their last committed offsets after the rejoin",
        ),
    ),
    "faust.transport.drivers.aiokafka": (
        (
            "Has not committed",
            logging.WARNING,
            "llmwatch holds back the offsets of events whose effect is not durable yet: expected while a window is "
            "open (worker.window_size_s + window_lateness_s), while ClickHouse is down, and just after a rebalance; "
            "a real stall shows in llmwatch_consumer_lag and llmwatch_stuck_batches_total",
        ),
    ),
}


class DemoteLines(logging.Filter):
    """Logs a library's line at another level, with what it means appended to it."""

    def __init__(self, rules: tuple[tuple[str, int, str], ...]) -> None:
        super().__init__()
        self.rules = rules

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        for fragment, level, meaning in self.rules:
            if fragment in record.msg and record.levelno > level:
                record.levelno, record.levelname = level, logging.getLevelName(level)
                record.msg = f"{record.msg} [llmwatch: {meaning}]"
                break
        return True


def install_rebalance_filters() -> None:
    """Attach the demotions to their loggers (idempotent)."""
    for name, rules in REBALANCE_LINES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DemoteLines) for f in logger.filters):
            logger.addFilter(DemoteLines(rules))
