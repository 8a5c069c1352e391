"""Create the topics llmwatch needs, idempotently (brokers run with auto.create.topics.enable=false).

Used by `llmwatch kafka up`, the test fixtures and any role that wants its topics present before it starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.errors import TopicAlreadyExistsError, for_code

from llmwatch.errors import KafkaError
from llmwatch.local.aio import run_sync
from llmwatch.schemas import TopicSpec, topic_registry
from llmwatch.settings import Settings

_READY_TIMEOUT_S = 15.0


def _new_topic(spec: TopicSpec, settings: Settings) -> NewTopic:
    return NewTopic(
        name=spec.name,
        num_partitions=spec.partitions,
        replication_factor=settings.replication_factor,
        topic_configs=spec.config(),
    )


async def ensure_topics(settings: Settings, specs: Iterable[TopicSpec] | None = None) -> list[str]:
    """Create the missing ones of `specs` (default: the whole registry); returns the names created.

    Topics that already exist are left as they are, whatever their partitions or configs. Returns once
    every created partition has a leader, so a producer can write to it straight away.
    """
    wanted = list(topic_registry(settings).values() if specs is None else specs)
    admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs(), request_timeout_ms=15_000)
    try:
        await admin.start()
    except (AioKafkaError, OSError) as e:
        await admin.close()
        raise KafkaError(f"cannot reach Kafka at {settings.kafka} to create topics: {e!r}") from e
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in wanted if s.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics([_new_topic(s, settings) for s in missing])
        created = _check_created(response.to_object())
        await _wait_for_leaders(admin, created)
        return created
    except AioKafkaError as e:
        raise KafkaError(f"creating topics on {settings.kafka} failed: {e!r}") from e
    finally:
        await admin.close()


def _check_created(response: dict) -> list[str]:
    """Names created by this request; an 'already exists' (a concurrent creator won) is not an error."""
    created: list[str] = []
    failures: list[str] = []
    for item in response["topic_errors"]:
        code = item["error_code"]
        if code == 0:
            created.append(item["topic"])
        elif code != TopicAlreadyExistsError.errno:
            message = item.get("error_message") or for_code(code).__name__
            failures.append(f"{item['topic']}: {message}")
    if failures:
        raise KafkaError("Kafka refused to create topics: " + "; ".join(failures))
    return created


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    pending = set(names)
    while pending:
        topics = await admin.describe_topics(sorted(pending))
        for topic in topics:
            partitions = topic["partitions"]
            if topic["error_code"] == 0 and partitions and all(p["leader"] >= 0 for p in partitions):
                pending.discard(topic["topic"])
        if not pending:
            return
        if time.monotonic() > deadline:
            raise KafkaError(f"topics created but without a partition leader after {_READY_TIMEOUT_S} s: {pending}")
        await asyncio.sleep(0.1)


def ensure_topics_sync(settings: Settings, specs: Iterable[TopicSpec] | None = None) -> list[str]:
    """`ensure_topics` for code that has no event loop running (CLI, fixtures)."""
    return run_sync(ensure_topics(settings, specs))


async def delete_topics(settings: Settings, names: Iterable[str]) -> None:
    """Delete topics (tests clean up after themselves on the shared broker); missing ones are ignored."""
    names = list(names)
    if not names:
        return
    admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs(), request_timeout_ms=15_000)
    try:
        await admin.start()
        await admin.delete_topics(names)
    except (AioKafkaError, OSError) as e:
        raise KafkaError(f"deleting topics {names} on {settings.kafka} failed: {e!r}") from e
    finally:
        await admin.close()


def delete_topics_sync(settings: Settings, names: Iterable[str]) -> None:
    run_sync(delete_topics(settings, names))
