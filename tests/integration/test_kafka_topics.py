"""The registry's topics on the real broker: present, shaped as the registry says, created idempotently."""

from __future__ import annotations

import dataclasses

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from llmwatch.kafka_topics import delete_topics, ensure_topics
from llmwatch.schemas import topic_registry
from llmwatch.settings import Settings

pytestmark = pytest.mark.integration


async def _describe(settings: Settings, names: list[str]) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """name → partition count, and name → topic configs, as the broker reports them."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
    await admin.start()
    try:
        topics = await admin.describe_topics(names)
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in topics if t["error_code"] == 0}
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            configs[resource["resource_name"]] = {
                e["config_names"]: e["config_value"] for e in resource["config_entries"]
            }
    return partitions, configs


async def test_registry_topics_exist_with_their_partitions_and_policies(kafka_settings: Settings) -> None:
    await ensure_topics(kafka_settings)  # what `kafka up` did; a no-op when it ran
    registry = topic_registry(kafka_settings)
    partitions, configs = await _describe(kafka_settings, [s.name for s in registry.values()])
    for spec in registry.values():
        assert partitions[spec.name] == spec.partitions, spec.name
        assert configs[spec.name]["cleanup.policy"] == ("compact" if spec.compacted else "delete"), spec.name
    weights = registry["weights"].name
    assert configs[weights]["cleanup.policy"] == "compact"
    assert partitions[registry["control"].name] == 1
    assert configs[registry["events"].name]["retention.ms"] == str(registry["events"].retention_ms)


async def test_ensure_topics_creates_only_what_is_missing(kafka_settings: Settings, isolated_topics: Settings) -> None:
    registry = topic_registry(isolated_topics)
    assert await ensure_topics(isolated_topics) == []  # the fixture created them all
    extra = dataclasses.replace(registry["weights"], name=registry["weights"].name + ".extra")
    try:
        assert await ensure_topics(isolated_topics, [registry["events"], extra]) == [extra.name]
        assert await ensure_topics(isolated_topics, [extra]) == []
        partitions, configs = await _describe(kafka_settings, [extra.name])
        assert partitions[extra.name] == 1
        assert configs[extra.name]["cleanup.policy"] == "compact"
    finally:
        await delete_topics(kafka_settings, [extra.name])


async def test_broker_refuses_to_auto_create_topics(kafka_settings: Settings) -> None:
    """auto.create.topics.enable=false: a typo in a topic name fails loudly instead of making a new topic."""
    admin = AIOKafkaAdminClient(**kafka_settings.kafka_client_kwargs())
    await admin.start()
    try:
        [topic] = await admin.describe_topics(["llmwatch.no.such.topic.for.tests"])
        assert "llmwatch.no.such.topic.for.tests" not in await admin.list_topics()
    finally:
        await admin.close()
    assert topic["error_code"] == 3  # UNKNOWN_TOPIC_OR_PARTITION
