"""On-call through a real Alertmanager: a real canary rollback on the real broker pages through it.

One `llmwatch worker` runs every agent with LLMWATCH_ALERTS__ALERTMANAGER_URL pointing at a real Alertmanager
(built from its Go module) that runs llmwatch's own deploy config, its receivers pointed at a local HTTP server
and its timings cut to seconds. A latency regression fails the canary; the controller rolls it back; the alerter
posts canary_failed to Alertmanager's v2 API, which routes it by the deployment's team to that team's pager,
groups it (alertname, deployment), inhibits the window alert it explains, and repeats it while it fires, until a
silence created through its API suppresses the repeat.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmwatch.harness import WorkerProcess, produce_sync, query_scalar, run_cli, wait_for
from llmwatch.harness.alertmanager import AlertmanagerProcess, Receiver, local_config
from llmwatch.settings import AlertSettings, EvaluatorSettings, JudgeSettings, RolloutSettings, Settings, WorkerSettings
from llmwatch.sim.events import scenario_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENTS = ["score", "window", "sink", "judge", "controller", "alerter"]
PAGER = "/assistant-pager"  # the receiver deploy/alertmanager/alertmanager.yml routes team=assistant criticals to


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def alertmanager(go_tool: Callable[[str], Path], receiver: Receiver, tmp_path: Path) -> Iterator[AlertmanagerProcess]:
    config = local_config(receiver_url=receiver.url, group_wait="1s", group_interval="2s", repeat_interval="4s")
    with AlertmanagerProcess(go_tool("alertmanager"), config, tmp_path / "alertmanager") as am:
        yield am


def pages(receiver: Receiver, alertname: str) -> list[dict[str, Any]]:
    """Firing notifications of `alertname`'s group that reached the team's pager."""
    return [
        n
        for n in receiver.notifications(PAGER)
        if n["groupLabels"].get("alertname") == alertname and n["status"] == "firing"
    ]


def test_rollback_pages_the_team_through_alertmanager_and_a_silence_stops_the_repeat(
    isolated_topics: Settings, tmp_path: Path, alertmanager: AlertmanagerProcess, receiver: Receiver
) -> None:
    s = isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": EvaluatorSettings(enabled=["pii"], redact=True),
            "worker": WorkerSettings(
                app_id=f"test-am-{uuid.uuid4().hex[:8]}",
                window_size_s=10,
                window_lateness_s=2,
                window_idle_close_s=2,
                sink_within_s=0.3,
            ),
            "rollout": RolloutSettings(
                steps=[0.2, 0.5, 1.0],
                min_sample=300,
                min_step_duration_s=5,
                hold_timeout_s=60,
                rollback_timeout_s=120,
                tick_interval_s=1,
            ),
            # test-sized judge: one-second strata, no metric critical (tests/integration/test_canary_rollout.py); the
            # traffic is one burst produced as the rollout starts: no settling time, or its scores are all left out
            "judge": JudgeSettings(interval_s=1, stratum_s=1, lateness_s=1, settle_s=0, critical=[]),
            "alerts": AlertSettings(
                ttft_p95_ms=300,
                min_window_count=20,
                webhook_backoff_max_s=1,
                alertmanager_url=alertmanager.url,
                alertmanager_resend_s=2,
                teams={"demo": "assistant"},
                runbook_url="https://docs.example/llmwatch/operators.md",
            ),
        }
    )
    worker = WorkerProcess(s, AGENTS, tmp_path / "worker.log").start()
    watched = [worker, alertmanager]
    try:
        run_cli(s, "rollout", "start", "demo", "--canary", "canary", "--baseline", "baseline", "--timeout", "120")
        events = scenario_events("latency-regression", 1500, seed=11, rate=None, canary_weight=0.2, onset_s=0)
        assert produce_sync(s, s.topics.events, events) == 1500
        rolled_back = "SELECT any(verdict_id) FROM traffic_weights FINAL WHERE state = 'rolled_back'"
        fail_id = wait_for(lambda: query_scalar(s, rolled_back), 150, "the rollback", processes=watched)

        # Alertmanager holds the alerter's canary_failed, with the labels that route and the annotations on-call reads
        def held() -> Any:
            return next((a for a in alertmanager.alerts() if a["labels"]["alertname"] == "canary_failed"), None)

        alert = wait_for(held, 90, "canary_failed in Alertmanager", processes=watched)
        assert alert["labels"] == {
            "alertname": "canary_failed",
            "severity": "critical",
            "deployment": "demo",
            "model_version": "canary",
            "team": "assistant",
        }
        ann = alert["annotations"]
        assert ann["verdict_id"] == fail_id and "canary canary of demo failed" in ann["summary"]
        assert ann["runbook_url"] == "https://docs.example/llmwatch/operators.md#canary_failed"
        assert ann["query"] == f"llmwatch db ready canary_metric_results --param verdict_id={fail_id}"
        assert alert["receivers"] == [{"name": "assistant-pager"}] and alert["status"]["state"] == "active"
        # one alert per event: the controller no longer writes a second canary_failed row
        one_row = "SELECT groupArray(labels['source']) FROM alerts FINAL WHERE rule = 'canary_failed'"
        assert wait_for(lambda: query_scalar(s, one_row), 30, "the canary_failed row", processes=watched) == ["alerter"]

        # grouped by (alertname, deployment), routed to the team's pager, repeated while it fires
        def group() -> Any:
            return next((g for g in alertmanager.groups() if g["labels"].get("alertname") == "canary_failed"), None)

        g = wait_for(group, 30, "the canary_failed group", processes=watched)
        assert g["labels"] == {"alertname": "canary_failed", "deployment": "demo"}
        assert g["receiver"]["name"] == "assistant-pager" and len(g["alerts"]) == 1
        wait_for(lambda: len(pages(receiver, "canary_failed")) >= 2, 60, "the page and a repeat", processes=watched)
        page = pages(receiver, "canary_failed")[0]
        assert page["receiver"] == "assistant-pager" and page["groupLabels"] == g["labels"]
        assert page["alerts"][0]["annotations"]["verdict_id"] == fail_id

        # the window alert it explains (the canary's slow first tokens) is inhibited by it
        def inhibited() -> Any:
            ttft = [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "ttft_p95_high"]
            canary = [a for a in ttft if a["labels"].get("model_version") == "canary"]
            return canary if canary and all(a["status"]["inhibitedBy"] for a in canary) else None

        (ttft,) = wait_for(inhibited, 90, "ttft_p95_high of the canary, inhibited", processes=watched)
        assert ttft["status"]["state"] == "suppressed" and ttft["labels"]["team"] == "assistant"

        # a silence through the API: the alert stays (the alerter keeps confirming it), the repeats stop
        sid = alertmanager.silence(
            {"alertname": "canary_failed", "deployment": "demo"}, comment="rolled back; investigating"
        )

        def silenced() -> Any:
            a = held()
            return a if a and a["status"]["silencedBy"] == [sid] and a["status"]["state"] == "suppressed" else None

        wait_for(silenced, 30, "canary_failed silenced", processes=watched)
        before = len(pages(receiver, "canary_failed"))
        updated = [held()["updatedAt"]]
        deadline = time.monotonic() + 14  # 3 repeat intervals (4 s) and a group interval (2 s)
        while time.monotonic() < deadline or len(set(updated)) < 3:
            time.sleep(1)
            assert time.monotonic() < deadline + 30, f"the alerter stopped re-posting: {updated}"
            updated.append(held()["updatedAt"])
        assert len(set(updated)) >= 3  # re-posted while silenced: it would repeat, were it not for the silence
        assert len(pages(receiver, "canary_failed")) == before, pages(receiver, "canary_failed")[before:]
        assert held()["status"]["silencedBy"] == [sid]
        delivered = query_scalar(s, "SELECT count() FROM alerts FINAL WHERE rule = 'canary_failed'")
        assert delivered == 1
    finally:
        worker.stop()
