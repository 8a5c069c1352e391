"""Keeping record payloads out of logs at DEBUG.

Kafka client libraries log whole records at DEBUG: aiokafka every produce request and fetch response
(`aiokafka.conn`) and each value it sends, Faust each value it sends. Records hold prompts, responses and
dead letters' raw bytes, so `--loglevel debug` would write raw PII to log files. These filters drop exactly those
lines; the rest of the libraries' debug output (connections, fetch offsets, rebalances) stays.
"""

from __future__ import annotations

import logging

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
