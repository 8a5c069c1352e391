"""Canary rollouts end to end on the real broker and the real ClickHouse engine.

One `llmwatch worker` runs every agent (score, window, sink, judge, controller, alerter); the rollout is started
with the `llmwatch rollout start` command; traffic comes from the scenario simulator with timestamps of now.
- latency-regression: the judge fails the canary, the controller sets it to 0 % with the verdict's id, the
  alerter raises canary_failed (once, to a real local webhook) and a ttft_p95 alert, all landing in ClickHouse.
- steady (A/A): the canary walks every configured step to 100 %, each move caused by a pass verdict.
In both, every TrafficWeights on the topic is read back raw and checked: each share in [0, 1], sum 1.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from llmwatch.harness import (
    WorkerProcess,
    follow_and_produce,
    produce_sync,
    query_scalar,
    run_cli,
    wait_for,
)
from llmwatch.settings import AlertSettings, EvaluatorSettings, JudgeSettings, RolloutSettings, Settings, WorkerSettings
from llmwatch.sim.events import scenario_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENTS = ["score", "window", "sink", "judge", "controller", "alerter"]


# ------------------------------------------------------------------------------------------- helpers
class Webhook:
    """A real HTTP receiver on 127.0.0.1 that keeps every JSON body POSTed to it, by path."""

    def __init__(self) -> None:
        bodies: list[tuple[str, dict[str, Any]]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                bodies.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alertmanager(self) -> list[dict[str, Any]]:
        return [b for p, b in self.bodies if p == "/alertmanager"]

    def slack(self) -> list[dict[str, Any]]:
        return [b for p, b in self.bodies if p == "/slack"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


#: Test-sized judge: one-second strata judged a second after they end; no metric critical, so the rates with no
#: events in a few hundred requests are NO_DATA instead of blocking (their fail tests still run).
FAST_JUDGE = JudgeSettings(interval_s=1, stratum_s=1, lateness_s=1, settle_s=0.5, critical=[])


def canary_settings(
    base: Settings, tmp_path: Path, hook: Webhook, rollout: RolloutSettings, judge: JudgeSettings = FAST_JUDGE
) -> Settings:
    return base.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": EvaluatorSettings(enabled=["pii"], redact=True),
            "worker": WorkerSettings(
                app_id=f"test-canary-{uuid.uuid4().hex[:8]}",
                window_size_s=10,
                window_lateness_s=2,
                window_idle_close_s=2,
                sink_within_s=0.3,
            ),
            "rollout": rollout,
            "judge": judge,
            "alerts": AlertSettings(
                ttft_p95_ms=300,
                min_window_count=20,
                webhook_backoff_max_s=1,
                webhook=f"{hook.url}/alertmanager",
                slack_webhook=f"{hook.url}/slack",
            ),
        }
    )


def all_weights(settings: Settings) -> list[dict[str, Any]]:
    """Every record on the weights topic, as raw JSON (not through the schema: the test checks validity itself)."""

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(settings.topics.weights, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            out: list[dict[str, Any]] = []
            while await consumer.position(tp) < end:
                for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                    out += [json.loads(r.value) for r in records]
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def assert_all_valid(records: list[dict[str, Any]]) -> None:
    assert records, "no weights on the topic"
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    for r in records:
        shares = list(r["weights"].values())
        assert all(0.0 <= x <= 1.0 for x in shares) and math.isclose(math.fsum(shares), 1.0, abs_tol=1e-9), r
        assert r["verdict_id"] or r["command_id"] or r["state"] in ("holding", "rolled_back"), r


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query, through the worker that holds the embedded ClickHouse (this process never opens it)."""
    from llmwatch.db.lock import embedded_path, live_owner
    from llmwatch.db.owner import RemoteQueryClient

    owner = live_owner(embedded_path(settings.clickhouse_url).resolve())
    assert owner is not None, "no worker holds the embedded ClickHouse"
    client = RemoteQueryClient(owner.url, owner.token)
    try:
        result = client.query(sql)
        found = getattr(result, "result_rows", None)
        return [tuple(r) for r in (found if found is not None else result.rows)]
    finally:
        client.close()


# --------------------------------------------------------------------------------------------- tests
def _verdicts_landed(s: Settings, ids: list[str], columns: str, worker: WorkerProcess) -> list[tuple[Any, ...]]:
    """`columns` of the canary_verdicts rows of `ids`, once all of them landed. The sink stores the verdicts topic
    and the weights topic in separate batches, so a move can land before the verdict that caused it (it did, once
    in CI: the promoting verdict was still on its way 0.2 s after the promotion's row)."""
    id_list = ",".join(f"'{v}'" for v in ids)
    query = f"SELECT {columns} FROM canary_verdicts FINAL WHERE verdict_id IN ({id_list}) ORDER BY verdict_id"

    def landed() -> list[tuple[Any, ...]] | None:
        found = rows(s, query)
        return found if len(found) == len(set(ids)) else None

    return wait_for(landed, 60, f"the verdicts {ids} to land", processes=[worker])


def test_latency_regression_rolls_back_and_alerts(isolated_topics: Settings, tmp_path: Path, webhook: Webhook) -> None:
    rollout = RolloutSettings(
        steps=[0.2, 0.5, 1.0],
        min_sample=300,
        min_step_duration_s=5,
        hold_timeout_s=60,
        rollback_timeout_s=120,
        tick_interval_s=1,
    )
    # one burst of traffic produced the moment the rollout starts: no settling time (its scores would all be
    # left out as "the routers are still switching"; the burst already follows the new weights)
    s = canary_settings(isolated_topics, tmp_path, webhook, rollout, FAST_JUDGE.model_copy(update={"settle_s": 0}))
    worker = WorkerProcess(s, AGENTS, tmp_path / "worker.log").start()
    try:
        out = run_cli(s, "rollout", "start", "demo", "--canary", "canary", "--baseline", "baseline", "--timeout", "120")
        assert "progressing, step 0" in out and "canary 20.0%" in out
        started = time.monotonic()
        events = scenario_events("latency-regression", 1500, seed=11, rate=None, canary_weight=0.2, onset_s=0)
        assert produce_sync(s, s.topics.events, events) == 1500

        def rolled_back() -> Any:
            return query_scalar(s, "SELECT count() FROM traffic_weights FINAL WHERE state = 'rolled_back'")

        wait_for(rolled_back, 120, "the canary to be rolled back (traffic_weights)", processes=[worker])
        elapsed = time.monotonic() - started

        moves = rows(
            s,
            "SELECT seq, state, weights['canary'], verdict_id, command_id FROM traffic_weights FINAL "
            "WHERE deployment = 'demo' ORDER BY seq",
        )
        assert [(m[0], m[1], m[2]) for m in moves] == [(1, "progressing", 0.2), (2, "rolled_back", 0.0)], moves
        assert moves[0][4] and moves[1][3], "every move names its cause"
        fail_id = moves[1][3]
        verdict = _verdicts_landed(s, [fail_id], "result, canary_version, reason", worker)
        assert verdict and verdict[0][0] == "fail" and verdict[0][1] == "canary" and "ttft" in verdict[0][2], verdict

        def alerted() -> Any:
            got = rows(s, "SELECT rule, status, verdict_id, labels['source'] FROM alerts FINAL")
            rules = {(r[0], r[1]) for r in got}
            return got if {("canary_failed", "firing"), ("ttft_p95_high", "firing")} <= rules else None

        alerts = wait_for(alerted, 90, "canary_failed and ttft_p95_high alerts in ClickHouse", processes=[worker])
        canary_failed = [a for a in alerts if a[0] == "canary_failed"]
        assert [(a[1], a[2], a[3]) for a in canary_failed] == [("firing", fail_id, "alerter")]  # one alert, one row

        # one page per (deployment, rule)
        def notified() -> Any:
            names = [(b["groupLabels"]["alertname"], b["status"]) for b in webhook.alertmanager()]
            return names if ("canary_failed", "firing") in names and ("ttft_p95_high", "firing") in names else None

        names = wait_for(notified, 60, "Alertmanager webhook notifications", processes=[worker])
        assert names.count(("canary_failed", "firing")) == 1, names
        body = next(b for b in webhook.alertmanager() if b["groupLabels"]["alertname"] == "canary_failed")
        assert body["version"] == "4" and body["alerts"][0]["labels"]["deployment"] == "demo"
        assert body["alerts"][0]["labels"]["severity"] == "critical"
        assert any("canary_failed on demo" in b["text"] for b in webhook.slack())

        records = all_weights(s)
        assert_all_valid(records)
        assert records[-1]["weights"]["canary"] == 0.0 and records[-1]["state"] == "rolled_back"
        status = run_cli(s, "rollout", "status", "demo")
        assert "rolled_back" in status and fail_id in status
        print(f"latency regression rolled back {elapsed:.1f} s after the traffic started")
    finally:
        worker.stop()


def test_steady_walks_every_step_to_full_promotion(isolated_topics: Settings, tmp_path: Path, webhook: Webhook) -> None:
    rollout = RolloutSettings(
        steps=[0.2, 0.5, 1.0],
        min_sample=200,
        min_step_duration_s=3,
        hold_timeout_s=60,
        rollback_timeout_s=120,
        tick_interval_s=1,
    )
    # pass on a few hundred canary requests (fail margins stay as strict)
    judge = FAST_JUDGE.model_copy(update={"pass_margin_scale": 8})
    s = canary_settings(isolated_topics, tmp_path, webhook, rollout, judge)
    worker = WorkerProcess(s, AGENTS, tmp_path / "worker.log").start()
    stop, sent = threading.Event(), [0]
    traffic = threading.Thread(target=follow_and_produce, args=(s, stop, 100.0, sent), daemon=True)
    try:
        out = run_cli(s, "rollout", "start", "demo", "--canary", "canary", "--baseline", "baseline", "--timeout", "120")
        assert "progressing, step 0" in out
        started = time.monotonic()
        traffic.start()

        def promoted() -> Any:
            return query_scalar(s, "SELECT count() FROM traffic_weights FINAL WHERE state = 'promoted'")

        wait_for(promoted, 150, "the canary to reach 100%", processes=[worker])
        elapsed = time.monotonic() - started
        stop.set()
        traffic.join(30)

        moves = rows(
            s,
            "SELECT seq, state, weights['canary'], verdict_id, command_id FROM traffic_weights FINAL "
            "WHERE deployment = 'demo' ORDER BY seq",
        )
        assert [(m[1], m[2]) for m in moves] == [("progressing", 0.2), ("progressing", 0.5), ("promoted", 1.0)], moves
        assert moves[0][4] is not None
        pass_ids = [m[3] for m in moves[1:]]
        results = _verdicts_landed(s, pass_ids, "verdict_id, result", worker)
        assert sorted(results) == sorted((v, "pass") for v in pass_ids), (pass_ids, results)
        assert query_scalar(s, "SELECT countIf(result = 'fail') FROM canary_verdicts FINAL") == 0
        assert query_scalar(s, "SELECT countIf(rule = 'canary_failed') FROM alerts FINAL") == 0

        records = all_weights(s)
        assert_all_valid(records)
        assert [(r["state"], r["weights"]["canary"]) for r in records] == [(m[1], m[2]) for m in moves]
        print(f"steady canary promoted through 3 steps in {elapsed:.1f} s on {sent[0]} events")
    finally:
        stop.set()
        worker.stop()
