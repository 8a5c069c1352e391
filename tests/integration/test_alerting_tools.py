"""The deploy files of alerting, checked by the tools on-call engineers use: `promtool test rules` runs every rule's
unit tests (deploy/prometheus/tests), `promtool check rules` the rule file, `amtool check-config` and
`amtool config routes test` the Alertmanager config. The binaries are built from the Go modules once and cached
(the `go_tool` fixture; scripts/install.sh builds them first)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, check=False)


def test_promtool_checks_the_rule_file(go_tool: Callable[[str], Path]) -> None:
    done = run(go_tool("promtool"), "check", "rules", PROMETHEUS / "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 18 rules found" in done.stdout, done.stdout


def test_every_rule_passes_its_promtool_unit_tests(go_tool: Callable[[str], Path]) -> None:
    files = sorted((PROMETHEUS / "tests").glob("*.yml"))
    assert len(files) >= 4
    done = run(go_tool("promtool"), "test", "rules", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(files), done.stdout


def test_promtool_unit_tests_can_fail(go_tool: Callable[[str], Path], tmp_path: Path) -> None:
    """Negative control: the same runner reports a rule test whose expectation is wrong."""
    text = (PROMETHEUS / "tests" / "gateway.yml").read_text().replace("15% of chat", "16% of chat")
    text = text.replace("../alerts.yml", str(PROMETHEUS / "alerts.yml"))
    (tmp_path / "wrong.yml").write_text(text)
    done = run(go_tool("promtool"), "test", "rules", tmp_path / "wrong.yml")
    assert done.returncode != 0 and "16% of chat" in done.stdout + done.stderr


def test_amtool_checks_the_alertmanager_config(go_tool: Callable[[str], Path]) -> None:
    done = run(go_tool("amtool"), "check-config", ALERTMANAGER_CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout and "3 inhibit rules" in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        # a deployment mapped to the assistant team (LLMWATCH_ALERTS__TEAMS): its canary pages go to its pager
        (["alertname=canary_failed", "severity=critical", "deployment=chat", "team=assistant"], "assistant-pager"),
        (["alertname=ttft_p95_high", "severity=warning", "deployment=chat", "team=assistant"], "assistant-chat"),
        # routed by deployment
        (["alertname=canary_failed", "severity=critical", "deployment=support-bot"], "support-pager"),
        (["alertname=ttft_p95_high", "severity=warning", "deployment=support-bot"], "support-chat"),
        # by severity for the rest; info notifies no one
        (["alertname=LlmwatchSinkStalled", "severity=critical"], "ml-platform-pager"),
        (["alertname=LlmwatchConsumerLagHigh", "severity=warning"], "ml-platform-chat"),
        (["alertname=LlmwatchLateEvents", "severity=info"], "null"),
    ],
)
def test_amtool_routes_pages_by_team_deployment_and_severity(
    go_tool: Callable[[str], Path], labels: list[str], receiver: str
) -> None:
    done = run(go_tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == receiver, (labels, done.stdout)
