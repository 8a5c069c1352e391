"""Shared fixtures: the real Kafka broker and per-test topics on it.

`kafka_settings` uses the broker LLMWATCH_KAFKA names (default 127.0.0.1:9092, the one `llmwatch kafka up`
starts); when none answers on a loopback address it starts one through the library, so a single test file
also passes on its own. It leaves that broker running (like `kafka up`; `scripts/test.sh` stops what it
started). Topic fixtures create unique names per test and delete them afterwards.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llmwatch.harness import private_run
from llmwatch.kafka_topics import delete_topics_sync, ensure_topics_sync
from llmwatch.local.kafka import LocalKafka
from llmwatch.local.kafka_config import parse_local_address
from llmwatch.local.kafka_probe import describe_cluster_sync
from llmwatch.schemas import topic_registry
from llmwatch.settings import Settings

TopicFactory = Callable[..., str]


@pytest.fixture(scope="session")
def kafka_settings() -> Settings:
    """Settings pointing at a running broker (started here if a loopback address has none)."""
    settings = Settings()
    if describe_cluster_sync(settings, timeout_s=5.0) is None:
        parse_local_address(settings.kafka)  # a remote, unreachable cluster is the user's to fix: ConfigError
        LocalKafka(settings).up()
    return settings


def _unique(request: pytest.FixtureRequest, suffix: str = "") -> str:
    test = re.sub(r"[^a-zA-Z0-9_-]+", "_", request.node.name)[:60]
    return f"test.{test}.{uuid.uuid4().hex[:8]}{suffix}"


@pytest.fixture
def topic_factory(kafka_settings: Settings, request: pytest.FixtureRequest) -> Iterator[TopicFactory]:
    """make(role="events", partitions=None, compacted=None) -> a fresh topic shaped like that registry topic."""
    created: list[str] = []

    def make(role: str = "events", *, partitions: int | None = None, compacted: bool | None = None) -> str:
        base = topic_registry(kafka_settings)[role]
        spec = dataclasses.replace(
            base,
            name=_unique(request, f".{role}"),
            partitions=base.partitions if partitions is None else partitions,
            compacted=base.compacted if compacted is None else compacted,
        )
        ensure_topics_sync(kafka_settings, [spec])
        created.append(spec.name)
        return spec.name

    yield make
    delete_topics_sync(kafka_settings, created)


@pytest.fixture
def kafka_topic(topic_factory: TopicFactory) -> str:
    """One fresh topic shaped like the events topic."""
    return topic_factory()


@pytest.fixture
def isolated_topics(kafka_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """kafka_settings with every registry topic renamed to a fresh, created one and its own consumer group (a
    private run of the harness, as benchmarks and the demo use), deleted afterwards."""
    test = re.sub(r"[^a-zA-Z0-9_-]+", "_", request.node.name)[:60]
    with private_run(kafka_settings, f"test.{test}") as settings:
        yield settings


@pytest.fixture(scope="session")
def go_tool(pytestconfig: pytest.Config) -> Callable[[str], Path]:
    """go_tool("promtool" | "amtool" | "alertmanager") -> the binary, built from its Go module the first time
    (minutes: promtool ~12 on 2 cores; scripts/install.sh builds them before the tests) and cached under
    LLMWATCH_CACHE_DIR/go-tools. The build's progress is printed past pytest's capture."""
    from llmwatch.harness import gotools

    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")

    def say(message: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[go-tools] {message}")

    def get(name: str) -> Path:
        return gotools.ensure(name, Settings().cache_dir, say=say)

    return get
