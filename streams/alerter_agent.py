"""Alerter agent: verdicts and window metrics → alert rules → deduplicated Alerts on llm.alerts and webhooks.

- Rules and dedup are pure (streams/alerting.py). Alerts the alerter raises go to llm.alerts (the sink stores
  them in `alerts`) with labels.source = "alerter"; input offsets are released once those sends are durable.
- Alerts raised elsewhere (the controller's rollback and silence alerts) are read back from llm.alerts and
  passed on to the receivers, deduplicated against the alerter's own (one page per deployment and rule).
- Delivery (`Notifier`) is a bounded queue drained by a background task, POSTed with httpx and retried with
  exponential back-off, to any of: Alertmanager's v2 API (settings.alerts.alertmanager_url), a webhook that takes
  Alertmanager's receiver JSON (alerts.webhook), a Slack incoming webhook (alerts.slack_webhook). The stream never
  waits for a receiver; a full queue drops its oldest notification (counted), and the alerts table still holds
  every alert. Delivery is best effort, like Alertmanager's.
- Alertmanager keeps an alert firing until its `endsAt`: the alerter posts each firing alert again every
  `alertmanager_resend_s` with `endsAt` pushed 4 × that ahead (as Prometheus does), and posts it with the time it
  cleared once its condition clears. Alertmanager dedups the re-posts (one notification per group and
  repeat_interval); alerts raised elsewhere (events) are posted once, firing for `event_alert_s`.
- Dedup state is in memory. Its consumer group gives every partition to one worker (streams/worker.py,
  SINGLE_OWNER), so one alerter is active however many workers run it; a takeover or a restart may notify a
  still-firing alert again, and an alert whose condition cleared while no alerter ran resolves in Alertmanager at
  its `endsAt`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    Decor,
    WindowRuleBook,
    alertmanager_payload,
    labels_and_annotations,
    postable_alert,
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
    """A receiver that gets one POST per notification, its body rendered from the alert."""

    name: str  # "webhook" | "slack"
    url: str
    render: Callable[[Alert], Any]

    def body(self, alert: Alert, now: datetime) -> Any:
        return self.render(alert)


@dataclass
class AlertmanagerTarget:
    """Alertmanager's v2 API: `POST {url}/api/v2/alerts` with a list of postable alerts.

    Keeps the alerts it reported firing (by fingerprint) so that `repost` can confirm them before their `endsAt`,
    and so that an alert whose labels changed (a new canary version failing) first resolves the old label set."""

    base_url: str
    resend_s: float
    event_s: float
    decor: Decor
    name: str = "alertmanager"
    firing: dict[str, tuple[Alert, dict[str, str]]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/api/v2/alerts"

    def _until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=4 * self.resend_s)

    def body(self, alert: Alert, now: datetime) -> list[dict[str, Any]]:
        out = []
        if alert.labels.get("source") != SOURCE:  # an event raised elsewhere: no condition will clear it
            return [postable_alert(alert, alert.starts_at + timedelta(seconds=self.event_s), self.decor)]
        labels = labels_and_annotations(alert, self.decor)[0]
        before = self.firing.pop(alert.fingerprint, None)
        if before is not None and before[1] != labels:  # the same alert now names other labels: end the old one
            out.append(postable_alert(before[0], now, self.decor))
        if alert.status == "firing":
            self.firing[alert.fingerprint] = (alert, labels)
            out.append(postable_alert(alert, self._until(now), self.decor))
        else:
            out.append(postable_alert(alert, alert.ends_at or now, self.decor))
        return out

    def repost_body(self, now: datetime) -> list[dict[str, Any]]:
        """Every alert still firing, with `endsAt` pushed on (empty when none fires)."""
        return [postable_alert(a, self._until(now), self.decor) for a, _ in self.firing.values()]


AnyTarget = Target | AlertmanagerTarget


class Notifier:
    """Sends alerts to webhooks from a queue, off the stream's path; retries with capped exponential back-off.

    4xx answers other than 408/429 are not retried (the receiver refuses the body; retrying can't help).
    """

    def __init__(
        self,
        targets: list[AnyTarget],
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
        self._repost: asyncio.Task[None] | None = None
        self.sent = Counter(
            "llmwatch_alert_notifications_total",
            "Alert deliveries by target (alertmanager, webhook, slack) and outcome (delivered, failed, dropped)",
            ["target", "outcome"],
            registry=registry or CollectorRegistry(),
        )

    def start(self) -> None:
        if self._task is None and self.targets:
            self._task = asyncio.create_task(self._run(), name="llmwatch-alert-notifier")
        managers = [t for t in self.targets if isinstance(t, AlertmanagerTarget)]
        if self._repost is None and managers:
            self._repost = asyncio.create_task(self._reposts(managers), name="llmwatch-alert-repost")

    def cancel(self) -> None:
        for task in (self._task, self._repost):
            if task is not None:
                task.cancel()
        self._task = self._repost = None

    async def stop(self) -> None:
        tasks, self._task, self._repost = [self._task, self._repost], None, None
        for task in tasks:
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
                    now = utcnow()
                    await asyncio.gather(*(self._deliver(client, t, t.body(alert, now), alert) for t in self.targets))
                finally:
                    self.queue.task_done()

    async def _reposts(self, managers: list[AlertmanagerTarget]) -> None:
        """Confirm firing alerts to Alertmanager before their `endsAt` passes."""
        async with httpx.AsyncClient(timeout=self.cfg.webhook_timeout_s) as client:
            while True:
                await asyncio.sleep(min(t.resend_s for t in managers))
                now = utcnow()
                for target in managers:
                    body = target.repost_body(now)
                    if body:
                        await self._deliver(client, target, body, None, attempts=1, count=False)

    async def _deliver(
        self,
        client: httpx.AsyncClient,
        target: AnyTarget,
        body: Any,
        alert: Alert | None,
        *,
        attempts: int | None = None,
        count: bool = True,
    ) -> bool:
        """POST `body` with retries; `count=False` (re-posts) leaves the delivery counters alone."""
        attempts = attempts or self.cfg.webhook_attempts
        what = f"{alert.deployment}/{alert.rule}" if alert is not None else "firing alerts (re-post)"
        for attempt in range(1, attempts + 1):
            try:
                r = await client.post(target.url, json=body)
                if r.is_success:
                    if count:
                        self.sent.labels(target=target.name, outcome="delivered").inc()
                    return True
                why = f"HTTP {r.status_code}: {r.text[:200]}"
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    attempt = attempts  # refused: no retry
            except httpx.HTTPError as e:
                why = repr(e)
            if attempt >= attempts:
                log.warning("alert %s to %s not delivered: %s", what, target.name, why)
                break
            delay = min(self.cfg.webhook_backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
            await asyncio.sleep(delay * (0.5 + random.random() / 2))  # jitter: receivers recovering get no herd
        if count:
            self.sent.labels(target=target.name, outcome="failed").inc()
        return False


def targets_from(settings: Settings) -> list[AnyTarget]:
    a = settings.alerts
    decor = Decor.of(a)
    out: list[AnyTarget] = []
    if a.alertmanager_url:
        out.append(AlertmanagerTarget(a.alertmanager_url, a.alertmanager_resend_s, a.event_alert_s, decor))
    if a.webhook:
        out.append(Target("webhook", a.webhook, lambda alert: alertmanager_payload([alert], decor=decor)))
    if a.slack_webhook:
        out.append(Target("slack", a.slack_webhook, slack_payload))
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
        self.decor = Decor.of(a)

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
            team = self.decor.team(alert.deployment)
            if team:  # stored with the alert: the alerts table says who was paged
                alert = alert.model_copy(update={"labels": {**alert.labels, "team": team}})
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
    ctx.exit_stack.callback(notifier.cancel)

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
    return alerter
