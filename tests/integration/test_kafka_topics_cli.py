"""`llmwatch kafka topics` creates the registry's topics on the configured cluster, idempotently."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner

from llmwatch.cli import cli
from llmwatch.kafka_topics import delete_topics_sync
from llmwatch.settings import Settings, TopicNames, get_settings

pytestmark = pytest.mark.integration


def test_topics_command_creates_then_reports_existing(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"test.cli.{uuid.uuid4().hex[:8]}"
    for role in TopicNames.model_fields:
        monkeypatch.setenv(f"LLMWATCH_TOPICS__{role.upper()}", f"{prefix}.{role}")
    get_settings.cache_clear()
    names = list(get_settings().topics.model_dump().values())
    try:
        first = CliRunner().invoke(cli, ["kafka", "topics"])
        assert first.exit_code == 0, first.output
        assert first.output.count(" created ") == len(names)
        second = CliRunner().invoke(cli, ["kafka", "topics"])
        assert second.exit_code == 0 and second.output.count(" exists ") == len(names)
        assert f"{prefix}.weights" in second.output and "compact" in second.output
    finally:
        delete_topics_sync(get_settings(), names)
        get_settings.cache_clear()
