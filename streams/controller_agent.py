"""Controller agent: CanaryVerdicts and ControlCommands → RolloutMachine per deployment → TrafficWeights.

- On start it reads the compacted weights topic to its end and rebuilds every deployment's machine from its
  last TrafficWeights (`RolloutMachine.restore`) before it reads any verdict or command.
- Every move is published to llm.traffic.weights (keyed by deployment) with the verdict_id or command_id that
  caused it, and awaited (acks=all) before the input's offset is released: a crash replays the input, never
  loses a move. The sink stores the topic in `traffic_weights`: that table is the audit.
- A timer applies the silence timeouts (hold, then roll back). Alert intents become Alert payloads on
  llm.alerts (labels.source = "controller"); the alerter delivers them.
- One controller per cluster: commands (one partition) and verdicts must reach the same machines. Run it in
  one worker, or alone with `llmwatch controller` (its own consumer group) and without it in the workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter

from llmwatch.errors import ConfigError
from llmwatch.schemas import CanaryVerdict, ControlCommand, TrafficWeights, utcnow
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES
from llmwatch.settings import Settings

from .context import WorkerContext
from .control import read_weights
from .decode import Decoded, decode
from .hold import process_held
from .rollout import Decision, RolloutConfig, RolloutMachine

log = logging.getLogger(__name__)
STAGE = "controller"
SOURCE = "controller"

Send = Callable[[str, str, bytes], Awaitable[None]]  # (topic role, key, value), returns once durable


def rollout_config(settings: Settings) -> RolloutConfig:
    try:
        return RolloutConfig.from_settings(settings)
    except ValueError as e:
        raise ConfigError(f"rollout settings: {e}") from e


class Controller:
    """The machines of every deployment, and the glue between them and the topics (no Faust in here)."""

    def __init__(self, config: RolloutConfig, send: Send, load: Callable[[], Awaitable[dict[str, TrafficWeights]]]):
        self.config = config
        self.send = send
        self.load = load
        self.machines: dict[str, RolloutMachine] = {}
        self.lock = asyncio.Lock()
        self.restored = False
        self.decisions: dict[str, int] = {}
        self.unsent: set[str] = set()  # deployments whose latest move may not have reached the topic

    async def ready(self) -> None:
        """Rebuild the machines from the weights topic, once, before anything else is applied."""
        async with self.lock:
            if self.restored:
                return
            now = utcnow()
            for deployment, last in (await self.load()).items():
                self.machines[deployment] = RolloutMachine.restore(last, now, self.config)
                log.info(
                    "controller: restored %s: %s, canary %s at %.0f%% (seq %d)",
                    deployment,
                    last.state,
                    last.canary_version,
                    100 * last.weights.get(last.canary_version or "", 0.0),
                    last.seq,
                )
            self.restored = True

    async def on_verdict(self, v: CanaryVerdict) -> Decision | None:
        await self.ready()
        async with self.lock:
            m = self.machines.get(v.deployment)
            if m is None:
                log.info("controller: verdict %s for %s ignored: no rollout known", v.verdict_id, v.deployment)
                return None
            return await self._apply(m.on_verdict(v, utcnow()))

    async def on_command(self, cmd: ControlCommand) -> Decision:
        await self.ready()
        async with self.lock:
            m = self.machines.get(cmd.deployment)
            if m is None:
                m = self.machines[cmd.deployment] = RolloutMachine(cmd.deployment, self.config)
            return await self._apply(m.on_command(cmd, utcnow()))

    async def tick(self) -> list[Decision]:
        await self.ready()
        async with self.lock:
            for deployment in sorted(self.unsent):
                last = self.machines[deployment].last
                if last is not None:
                    await self.send("weights", deployment, last.encode())
                    log.info("controller: re-sent %s seq %d after a failed send", deployment, last.seq)
                self.unsent.discard(deployment)
            now = utcnow()
            return [await self._apply(m.tick(now)) for m in list(self.machines.values())]

    async def _apply(self, d: Decision) -> Decision:
        self.decisions[d.kind] = self.decisions.get(d.kind, 0) + 1
        cause = d.verdict_id or d.command_id or "timer"
        if d.kind == "ignored":
            log.info("controller: %s ignored: %s", cause, d.reason)
        if d.weights is not None:
            w = d.weights
            self.unsent.add(w.deployment)  # until the broker has it: the next tick re-sends the machine's last
            await self.send("weights", w.deployment, w.encode())
            self.unsent.discard(w.deployment)
            log.info("controller: %s seq %d %s %s (%s): %s", w.deployment, w.seq, w.state, w.weights, cause, w.reason)
        if d.alert is not None:
            alert = d.alert.to_alert(utcnow()).model_copy(update={"labels": _alert_labels(d)})
            await self.send("alerts", alert.deployment, alert.encode())
        return d


def _alert_labels(d: Decision) -> dict[str, str]:
    labels = {"source": SOURCE}
    if d.weights is not None and d.weights.canary_version:
        labels["canary_version"] = d.weights.canary_version
    return labels


def install(ctx: WorkerContext) -> Controller:
    settings, app = ctx.settings, ctx.app
    decisions = Counter(
        "llmwatch_controller_decisions_total",
        "Verdicts, commands and ticks by outcome (moved, unchanged, ignored)",
        ["input", "kind"],
        registry=ctx.metrics.registry,
    )

    async def send(role: str, key: str, value: bytes) -> None:
        fut = await ctx.topics[role].send(key=key.encode(), value=value)
        await fut  # durable before the input's offset is released
        ctx.metrics.emitted.labels(agent=STAGE).inc()

    async def load() -> dict[str, TrafficWeights]:
        return await read_weights(settings)

    controller = Controller(rollout_config(settings), send, load)

    def consume(role: str, model: type[Any], handle: Callable[[Any], Awaitable[Decision | None]]) -> None:
        async def agent(stream: Any) -> None:
            await controller.ready()
            async for batch in stream.take_events(100, within=0.2):
                ctx.metrics.events.labels(agent=f"{STAGE}.{role}").inc(len(batch))

                async def handle_all(batch: list[Any] = batch) -> None:
                    for event in batch:
                        result = decode(model, event.message.value, max_bytes=MAX_MESSAGE_BYTES)
                        if not isinstance(result, Decoded):
                            if role == "control":  # nobody else reads commands: dead-letter them here
                                await ctx.reject(event, result, STAGE)
                            else:  # the sink dead-letters bad verdicts
                                log.warning("controller: skipping an unreadable verdict: %s", result.reason)
                            continue
                        d = await handle(result.payload)
                        decisions.labels(input=role, kind=d.kind if d else "ignored").inc()

                await process_held(stream, batch, handle_all, agent=STAGE, metrics=ctx.metrics)

        app.agent(ctx.topics[role], name=f"llmwatch.controller.{role}")(agent)

    consume("verdicts", CanaryVerdict, controller.on_verdict)
    consume("control", ControlCommand, controller.on_command)

    @app.timer(interval=settings.rollout.tick_interval_s, name="llmwatch.controller.clock")
    async def clock() -> None:
        try:
            for d in await controller.tick():
                decisions.labels(input="timer", kind=d.kind).inc()
        except Exception:
            log.exception("controller: tick failed")

    return controller
