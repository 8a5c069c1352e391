"""The alerter in a real worker: window thresholds fire, re-notify and resolve, deduplicated per (deployment, rule);
alerts land in ClickHouse; a real local webhook receives Alertmanager JSON even when it first answers 503."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmwatch.harness import WorkerProcess, produce, produce_sync, query_scalar, settings_env, wait_for
from llmwatch.schemas import Alert, WindowMetrics, utcnow
from llmwatch.settings import AlertSettings, Settings, WorkerSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class FlakyReceiver:
    """An HTTP receiver on 127.0.0.1 that answers 503 to its first `failures` POSTs, then 200 and keeps the body."""

    def __init__(self, failures: int) -> None:
        state = {"left": failures, "attempts": 0}
        bodies: list[dict[str, Any]] = []
        self.state, self.bodies = state, bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                state["attempts"] += 1
                if state["left"] > 0:
                    state["left"] -= 1
                    self.send_response(503)
                else:
                    bodies.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self) -> list[tuple[str, str]]:
        return [(b["groupLabels"]["alertname"], b["status"]) for b in self.bodies]


@pytest.fixture
def receiver() -> Iterator[FlakyReceiver]:
    r = FlakyReceiver(failures=2)
    yield r
    r.server.shutdown()
    r.server.server_close()


def window(i: int, error_rate: float) -> WindowMetrics:
    start = utcnow().replace(microsecond=0) - timedelta(seconds=60 * (10 - i))
    return WindowMetrics(
        window_id=f"chat/v1/baseline/default/{i}",
        window_start=start,
        window_end=start + timedelta(seconds=60),
        size_s=60,
        deployment="chat",
        model_version="v1",
        count=200,
        error_count=round(200 * error_rate),
        error_rate=error_rate,
        ttft_p95_ms=150.0,
    )


def send_windows(s: Settings, windows: list[WindowMetrics]) -> None:
    """Keyed like the window agent's output (deployment/model_version), so one series stays in order."""
    asyncio.run(produce(s, s.topics.windows, windows, key_of=lambda w: f"{w.deployment}/{w.model_version}"))


def test_window_alerts_fire_renotify_resolve_and_reach_the_webhook(
    isolated_topics: Settings, tmp_path: Path, receiver: FlakyReceiver
) -> None:
    s = isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "worker": WorkerSettings(app_id=f"test-alerts-{uuid.uuid4().hex[:8]}", sink_within_s=0.3),
            "alerts": AlertSettings(webhook=receiver.url, error_rate=0.05, renotify_s=3, webhook_backoff_max_s=0.5),
        }
    )
    env = settings_env(s) | {
        f"LLMWATCH_ALERTS__{k.upper()}": str(v) for k, v in s.alerts.model_dump(mode="json").items() if v is not None
    }
    worker = WorkerProcess(s, ["sink", "alerter"], tmp_path / "worker.log", extra_env=env).start()
    try:
        # breach, breach again at once (deduplicated), breach after the re-notify interval, then back to normal
        send_windows(s, [window(1, 0.20), window(2, 0.25)])
        wait_for(lambda: len(receiver.bodies) >= 1, 90, "the first notification", processes=[worker])
        time.sleep(3.5)
        send_windows(s, [window(3, 0.22)])
        wait_for(lambda: len(receiver.bodies) >= 2, 30, "the re-notification", processes=[worker])
        send_windows(s, [window(4, 0.01)])
        wait_for(lambda: len(receiver.bodies) >= 3, 30, "the resolved notification", processes=[worker])
        # an alert the controller raised, twice: delivered once (dedup), never republished by the alerter
        stale = Alert(
            deployment="chat",
            rule="canary_verdicts_stale",
            severity="warning",
            fingerprint="f" * 16,
            summary="canary v2 holding: no verdict for 600 s",
            labels={"source": "controller"},
        )
        produce_sync(s, s.topics.alerts, [stale, stale.model_copy(update={"alert_id": uuid.uuid4().hex})])
        wait_for(lambda: len(receiver.bodies) >= 4, 30, "the controller's alert", processes=[worker])
        time.sleep(1.5)

        assert receiver.seen() == [
            ("error_rate_high", "firing"),
            ("error_rate_high", "firing"),
            ("error_rate_high", "resolved"),
            ("canary_verdicts_stale", "firing"),
        ]
        assert receiver.state["attempts"] == 4 + 2  # the two 503s were retried
        first, again, resolved = (b["alerts"][0] for b in receiver.bodies[:3])
        assert first["startsAt"] == again["startsAt"] == resolved["startsAt"]
        assert first["endsAt"] == "0001-01-01T00:00:00Z" and resolved["endsAt"] != first["endsAt"]
        assert "is 20% (> 5%)" in first["annotations"]["summary"] and "is 22%" in again["annotations"]["summary"]
        assert first["labels"]["severity"] == "critical"

        def stored() -> Any:
            got = query_scalar(
                s,
                "SELECT groupArray((rule, status, labels['source'])) FROM "
                "(SELECT rule, status, labels, ts FROM alerts FINAL ORDER BY ts)",
            )
            return got if got and len(got) == 5 else None

        rows = wait_for(stored, 30, "5 alert rows in ClickHouse", processes=[worker])
        assert sorted(tuple(r) for r in rows) == sorted(
            [
                ("error_rate_high", "firing", "alerter"),
                ("error_rate_high", "firing", "alerter"),
                ("error_rate_high", "resolved", "alerter"),
                ("canary_verdicts_stale", "firing", "controller"),
                ("canary_verdicts_stale", "firing", "controller"),
            ]
        )
        assert query_scalar(s, "SELECT uniqExact(fingerprint) FROM alerts FINAL WHERE rule = 'error_rate_high'") == 1
    finally:
        worker.stop()
