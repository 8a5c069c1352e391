"""Alerter agent: verdicts and window metrics → alert rules → deduplicated Alerts on llm.alerts and webhooks.

- Rules and dedup are pure (streams/alerting.py). Alerts the alerter raises go to llm.alerts (the sink stores
  them in `alerts`) with labels.source = "alerter"; input offsets are released once those sends are durable.
- Alerts raised elsewhere (the controller's rollback and silence alerts) are read back from llm.alerts and
  passed on to the receivers, deduplicated against the alerter's own (one page per deployment and rule).
- Delivery (`Notifier`) is a bounded queue drained by a background task: an Alertmanager-compatible webhook
  (settings.worker.alert_webhook) and a Slack-compatible one (slack_webhook), POSTed with httpx and retried with
  exponential back-off. The stream never waits for a receiver; a full queue drops its oldest notification
  (counted), and the alerts table still holds every alert. Delivery is best effort, like Alertmanager's.
- Dedup state is in memory. Its consumer group gives every partition to one worker (streams/worker.py,
  SINGLE_OWNER), so one alerter is active however many workers run it; a takeover or a restart may notify a
  still-firing alert again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter

from llmwatch.local.aio import cancel_and_wait
from llmwatch.schemas import Alert, CanaryVerdict, Payload, WindowMetrics, utcnow
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES
from llmwatch.settings import AlertSettings, Settings

from .alerting import (
    SOURCE,
    AlertBook,
    Condition,
    WindowRuleBook,
    alertmanager_payload,
    slack_payload,
    verdict_conditions,
    window_rules,
)
from .context import WorkerContext
from .decode import Decoded, decode
from .hold import process_held

log = logging.getLogger(__name__)
STAGE = "alerter"


@dataclass(frozen=True)
class Target:
    name: str  # "alertmanager" | "slack"
    url: str
    render: Callable[[Alert], dict[str, Any]]


class Notifier:
    """Sends alerts to webhooks from a queue, off the stream's path; retries with capped exponential back-off.

    4xx answers other than 408/429 are not retried (the receiver refuses the body; retrying can't help).
    """

    def __init__(
        self,
        targets: list[Target],
        cfg: AlertSettings,
        *,
        registry: CollectorRegistry | None = None,
        backoff_base_s: float = 0.5,
    ) -> None:
        self.targets = targets
        self.cfg = cfg
        self.backoff_base_s = backoff_base_s
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=cfg.queue_size)
        self._task: asyncio.Task[None] | None = None
        self.sent = Counter(
            "llmwatch_alert_notifications_total",
            "Webhook deliveries by target and outcome (delivered, failed, dropped)",
            ["target", "outcome"],
            registry=registry or CollectorRegistry(),
        )

    def start(self) -> None:
        if self._task is None and self.targets:
            self._task = asyncio.create_task(self._run(), name="llmwatch-alert-notifier")

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    def enqueue(self, alert: Alert) -> None:
        """Never blocks: when the queue is full the oldest waiting notification is dropped."""
        if not self.targets:
            return
        self.start()
        if self.queue.full():
            dropped = self.queue.get_nowait()
            self.queue.task_done()
            for t in self.targets:
                self.sent.labels(target=t.name, outcome="dropped").inc()
            log.warning("alert queue full: dropped %s/%s (%s)", dropped.deployment, dropped.rule, dropped.status)
        self.queue.put_nowait(alert)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued notification was attempted (tests, shutdown)."""
        await asyncio.wait_for(self.queue.join(), timeout_s)

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self.cfg.webhook_timeout_s) as client:
            while True:
                alert = await self.queue.get()
                try:
                    await asyncio.gather(*(self._deliver(client, t, alert) for t in self.targets))
                finally:
                    self.queue.task_done()

    async def _deliver(self, client: httpx.AsyncClient, target: Target, alert: Alert) -> bool:
        body = target.render(alert)
        for attempt in range(1, self.cfg.webhook_attempts + 1):
            try:
                r = await client.post(target.url, json=body)
                if r.is_success:
                    self.sent.labels(target=target.name, outcome="delivered").inc()
                    return True
                why = f"HTTP {r.status_code}"
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    attempt = self.cfg.webhook_attempts  # refused: no retry
            except httpx.HTTPError as e:
                why = repr(e)
            if attempt >= self.cfg.webhook_attempts:
                log.warning("alert %s/%s to %s not delivered: %s", alert.deployment, alert.rule, target.name, why)
                break
            delay = min(self.cfg.webhook_backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
            await asyncio.sleep(delay * (0.5 + random.random() / 2))  # jitter: receivers recovering get no herd
        self.sent.labels(target=target.name, outcome="failed").inc()
        return False


def targets_from(settings: Settings) -> list[Target]:
    w = settings.worker
    out: list[Target] = []
    if w.alert_webhook:
        out.append(Target("alertmanager", w.alert_webhook, lambda a: alertmanager_payload([a])))
    if w.slack_webhook:
        out.append(Target("slack", w.slack_webhook, slack_payload))
    return out


class Alerter:
    """Inputs → conditions → notifications; `publish` puts the alerter's own alerts on llm.alerts."""

    def __init__(self, settings: Settings, publish: Callable[[Alert], Any], notifier: Notifier) -> None:
        a = settings.alerts
        self.book = AlertBook(renotify_s=a.renotify_s)
        self.windows = WindowRuleBook(
            window_rules(
                ttft_p95_ms=a.ttft_p95_ms,
                error_rate=a.error_rate,
                pii_leak_rate=a.pii_leak_rate,
                injection_success_rate=a.injection_success_rate,
                min_count=a.min_window_count,
            )
        )
        self.publish = publish
        self.notifier = notifier

    async def on_verdict(self, v: CanaryVerdict, now: datetime | None = None) -> list[Alert]:
        return await self._observe(verdict_conditions(v), now or utcnow())

    async def on_window(self, w: WindowMetrics, now: datetime | None = None) -> list[Alert]:
        return await self._observe(self.windows.observe(w), now or utcnow())

    async def on_alert(self, a: Alert, now: datetime | None = None) -> bool:
        """An alert read back from llm.alerts: pass on the ones raised elsewhere (deduplicated)."""
        if a.labels.get("source") == SOURCE:
            return False
        if self.book.observe_external(a, now or utcnow()):
            self.notifier.enqueue(a)
            return True
        return False

    async def _observe(self, conditions: list[Condition], now: datetime) -> list[Alert]:
        out = []
        for c in conditions:
            alert = self.book.observe(c, now)
            if alert is None:
                continue
            result = self.publish(alert)
            if asyncio.iscoroutine(result):
                await result
            self.notifier.enqueue(alert)
            log.info("alert %s %s/%s: %s", alert.status, alert.deployment, alert.rule, alert.summary)
            out.append(alert)
        return out


def install(ctx: WorkerContext) -> Alerter:
    settings, app = ctx.settings, ctx.app
    notifier = Notifier(targets_from(settings), settings.alerts, registry=ctx.metrics.registry)
    ctx.extras["exit_stack"].callback(notifier.cancel)

    async def publish(alert: Alert) -> None:
        fut = await ctx.topics["alerts"].send(key=alert.deployment.encode(), value=alert.encode())
        await fut
        ctx.metrics.emitted.labels(agent=STAGE).inc()

    alerter = Alerter(settings, publish, notifier)

    def consume(role: str, model: type[Payload], handle: Callable[[Any], Any]) -> None:
        async def agent(stream: Any) -> None:
            notifier.start()
            async for batch in stream.take_events(256, within=0.5):
                ctx.metrics.events.labels(agent=f"{STAGE}.{role}").inc(len(batch))

                async def handle_all(batch: list[Any] = batch) -> None:
                    for event in batch:
                        result = decode(model, event.message.value, max_bytes=MAX_MESSAGE_BYTES)
                        if isinstance(result, Decoded):  # unreadable ones: the sink dead-letters them
                            await handle(result.payload)

                await process_held(stream, batch, handle_all, agent=STAGE, metrics=ctx.metrics)

        app.agent(ctx.topics[role], name=f"llmwatch.alerter.{role}")(agent)

    consume("verdicts", CanaryVerdict, alerter.on_verdict)
    consume("windows", WindowMetrics, alerter.on_window)
    consume("alerts", Alert, alerter.on_alert)
    ctx.extras["alerter"] = alerter
    return alerter
