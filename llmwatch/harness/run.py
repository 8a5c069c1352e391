"""A private run: its own topics and consumer group on the broker (and, if asked, its own chDB folder), so a
benchmark, a test or a demo never sees another run's records, offsets, weights or rows; torn down at the end."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from llmwatch.kafka_topics import delete_topics, ensure_topics_sync
from llmwatch.local.aio import run_sync
from llmwatch.schemas import topic_registry
from llmwatch.settings import Settings, TopicNames

log = logging.getLogger(__name__)


def run_settings(base: Settings, prefix: str, data_dir: Path | None = None) -> Settings:
    """`base` with every topic renamed `{prefix}.{role}`, the consumer group `prefix`, and with `data_dir` its own
    embedded ClickHouse folder under it."""
    update: dict[str, object] = {
        "topics": TopicNames(**{role: f"{prefix}.{role}" for role in TopicNames.model_fields}),
        "worker": base.worker.model_copy(update={"app_id": prefix}),
    }
    if data_dir is not None:
        update |= {"data_dir": data_dir, "clickhouse": f"chdb://{data_dir / 'clickhouse'}"}
    return base.model_copy(update=update)


def delete_run_topics(settings: Settings, prefix: str) -> None:
    """Every topic whose name starts with `prefix`: the run's own and the ones Faust made for its group."""

    async def run() -> None:
        admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs(), request_timeout_ms=15_000)
        await admin.start()
        try:
            names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        finally:
            await admin.close()
        await delete_topics(settings, names)

    run_sync(run())  # from sync code and from inside a running loop alike (the gateway bench ends in one)


@contextmanager
def private_run(
    base: Settings, tag: str, *, data_dir: Path | None = None, keep_topics: bool = False
) -> Iterator[Settings]:
    """Settings of a fresh run `{tag}.{random}`: its topics created (shaped like the registry's), its own consumer
    group, with `data_dir` its own chDB folder. The topics are deleted at the end (unless `keep_topics`); a failure
    to delete them is logged, not raised, so it never hides the run's own outcome."""
    prefix = f"{tag}.{uuid.uuid4().hex[:8]}"
    settings = run_settings(base, prefix, data_dir)
    ensure_topics_sync(settings, list(topic_registry(settings).values()))
    try:
        yield settings
    finally:
        if not keep_topics:
            try:
                delete_run_topics(settings, prefix)
            except Exception as e:  # clean-up must not hide the result
                log.warning("could not delete the topics of run %s: %s", prefix, e)
