"""Is a broker answering? A Kafka metadata request, not just an open port, is the test of "up"."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError as AioKafkaError

from llmwatch.settings import Settings

from .aio import run_sync


def _tcp_open(settings: Settings, timeout_s: float) -> bool:
    """Cheap pre-check so a closed port does not make aiokafka log a connection error per try."""
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


async def describe_cluster(settings: Settings, timeout_s: float = 3.0) -> dict[str, Any] | None:
    """The cluster's metadata (brokers, cluster_id, controller_id), or None when no broker answers."""
    if not await asyncio.to_thread(_tcp_open, settings, timeout_s):
        return None
    admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs(), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        return await asyncio.wait_for(admin.describe_cluster(), timeout_s)
    except (AioKafkaError, OSError, TimeoutError):
        return None
    finally:
        await admin.close()


def describe_cluster_sync(settings: Settings, timeout_s: float = 3.0) -> dict[str, Any] | None:
    return run_sync(describe_cluster(settings, timeout_s))


async def wait_until_up(
    settings: Settings, timeout_s: float, alive: Callable[[], bool], poll_s: float = 0.25
) -> dict[str, Any] | None:
    """Poll until a metadata request succeeds; None on timeout or as soon as `alive()` turns false."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            return None
        info = await describe_cluster(settings, timeout_s=min(3.0, max(0.5, deadline - time.monotonic())))
        if info is not None and info.get("brokers"):
            return info
        await asyncio.sleep(poll_s)
    return None
