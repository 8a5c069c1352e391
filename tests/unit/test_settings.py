"""Settings: env parsing, validation, masking, and the reference doc kept in step with the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from llmwatch.settings import Settings
from llmwatch.settings_doc import effective_settings, settings_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_env_variables_and_nesting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMWATCH_KAFKA", "10.0.0.1:9092,10.0.0.2:9092")
    monkeypatch.setenv("LLMWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LLMWATCH_TOPICS__EVENTS", "team.events")
    monkeypatch.setenv("LLMWATCH_EVAL__REDACT", "false")
    s = Settings()
    assert s.bootstrap_servers == ["10.0.0.1:9092", "10.0.0.2:9092"]
    assert s.topics.events == "team.events" and s.topics.scores == "llm.eval.scores"
    assert s.eval.redact is False
    assert s.clickhouse_url == f"chdb://{tmp_path / 'clickhouse'}" and s.clickhouse_embedded


def test_clickhouse_url_must_be_chdb_or_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMWATCH_CLICKHOUSE", "postgres://x")
    with pytest.raises(ValidationError, match="chdb:///path or http"):
        Settings()


def test_sasl_ssl_options_reach_the_kafka_clients(tmp_path: Path) -> None:
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="hunter2",
    )
    kw = s.kafka_client_kwargs()
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_password"] == "hunter2" and kw["ssl_context"] is not None


def test_secrets_are_masked_when_shown() -> None:
    s = Settings(kafka_sasl_password="hunter2", clickhouse="https://user:pa55@ch.example:8443/db")
    shown = str(effective_settings(s))
    assert "hunter2" not in shown and "pa55" not in shown and "**********" in shown
    assert "hunter2" not in repr(s)


def test_configuration_doc_is_current() -> None:
    """docs/configuration.md is generated; regenerate it with `llmwatch settings --markdown > docs/configuration.md`."""
    assert (ROOT / "docs" / "configuration.md").read_text() == settings_markdown()


def test_judge_section_and_its_legacy_rollout_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """LLMWATCH_JUDGE__* is the judge's section; the old LLMWATCH_ROLLOUT__JUDGE_* names still reach it."""
    monkeypatch.setenv("LLMWATCH_ROLLOUT__JUDGE_INTERVAL_S", "3")
    monkeypatch.setenv("LLMWATCH_ROLLOUT__JUDGE_ALPHA_PASS", "0.1")
    monkeypatch.setenv("LLMWATCH_JUDGE__ALPHA_PASS", "0.2")  # the new name wins over the old one
    monkeypatch.setenv("LLMWATCH_JUDGE__CRITICAL", '["error_rate"]')
    s = Settings()
    assert s.judge.interval_s == 3 and s.judge.alpha_pass == 0.2 and s.judge.critical == ["error_rate"]
    assert not hasattr(s.rollout, "judge_interval_s")
    assert Settings(rollout={"judge_skew_s": 5}).judge.skew_s == 5  # constructed in code, too
