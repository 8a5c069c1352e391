"""Controller agent: CanaryVerdicts and ControlCommands → RolloutMachine per deployment → TrafficWeights.

- Every move is published to llm.traffic.weights (keyed by deployment) with the verdict_id or command_id that
  caused it, and awaited (acks=all) before the input's offset is released: a crash replays the input, never
  loses a move. The sink stores the topic in `traffic_weights`: that table is the audit.
- A timer applies the silence timeouts (hold, then roll back). Alert intents become Alert payloads on
  llm.alerts (labels.source = "controller"); the alerter delivers them. Not `canary_failed`: the alerter raises
  that one itself from the same fail verdict (and resolves it), so one rollback is one alert.

One active controller, fenced (issue 22). Any number of workers may run the controller: its consumer group gives
every partition of llm.canary.verdicts and llm.control.commands to one of them (streams/patches.py,
SingleOwnerAssignor), so a deployment's verdicts and commands meet in one machine; the others stand by and take
over when its session times out. A controller that is assigned its partitions *activates*: it reads the weights
topic to its end, takes the next epoch (one above the highest on the topic), rebuilds every deployment's machine
from its last TrafficWeights (`RolloutMachine.restore`) and restates each of them under the new epoch before it
applies any input. Every record it writes carries that epoch and its instance; readers (the gateway's router, the
judge, any other controller) reject a record of a lower epoch (llmwatch/weights_topic.py), so a controller that
was replaced but does not know it yet — frozen past its session, or running in another consumer group — cannot
move traffic, and it stands down as soon as it reads the newer epoch.

Commands are applied once: the command ids applied to a deployment travel in its TrafficWeights
(`applied_commands`, the compacted topic remembers them), so a replayed command is ignored with a reason, and a
command older than `rollout.command_max_age_s` is refused with a reason. A controller in a new consumer group
reads the command topic from the beginning and applies none of the old ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from prometheus_client import Counter, Gauge

from llmwatch.errors import ConfigError
from llmwatch.schemas import CanaryVerdict, ControlCommand, TrafficWeights, utcnow
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES
from llmwatch.settings import Settings
from llmwatch.weights_topic import WeightsChange, WeightsReader, WeightsView

from .context import WorkerContext
from .decode import Decoded, decode
from .hold import process_held
from .rollout import Decision, RolloutConfig, RolloutMachine

log = logging.getLogger(__name__)
STAGE = "controller"
SOURCE = "controller"
#: Alert intents the controller leaves to the alerter, which raises them from the verdicts it reads too.
RAISED_BY_ALERTER = frozenset({"canary_failed"})

Send = Callable[[str, str, bytes], Awaitable[None]]  # (topic role, key, value), returns once durable
#: how many applied command ids each deployment's TrafficWeights remembers
APPLIED_MEMORY = 64

State = Literal["standby", "active", "fenced"]


def rollout_config(settings: Settings) -> RolloutConfig:
    try:
        return RolloutConfig.from_settings(settings)
    except ValueError as e:
        raise ConfigError(f"rollout settings: {e}") from e


class Controller:
    """The machines of every deployment, and the glue between them and the topics (no Faust in here).

    `load` returns the weights topic read to its end of now. `managed`: activation follows the consumer group
    (`activate` / `stand_by`, called at each assignment); unmanaged (tests, one process), the first input
    activates it."""

    def __init__(
        self,
        config: RolloutConfig,
        send: Send,
        load: Callable[[], Awaitable[WeightsView]],
        *,
        instance: str = "controller",
        command_max_age_s: float = 300.0,
    ) -> None:
        self.config = config
        self.send = send
        self.load = load
        self.instance = instance
        self.command_max_age_s = command_max_age_s
        self.machines: dict[str, RolloutMachine] = {}
        self.applied: dict[str, list[str]] = {}  # deployment → command ids applied, oldest first
        self.lock = asyncio.Lock()
        self.state: State = "standby"
        self.managed = False
        self.owner = False  # managed: the consumer group gave this controller its partitions
        self.epoch = 0
        self.activations = 0
        self.decisions: dict[str, int] = {}
        self.unsent: set[str] = set()  # deployments whose latest move may not have reached the topic

    @property
    def active(self) -> bool:
        return self.state == "active"

    async def ready(self) -> None:
        """Activate before an input is applied: unmanaged, at the first one; managed, when an activation at the
        assignment failed (the broker did not answer) and this controller still owns the partitions."""
        if self.state == "standby" and (self.owner or not self.managed):
            await self.activate()

    async def activate(self) -> None:
        """Become the active controller: the weights topic read to its end, the next epoch, every machine rebuilt
        from its deployment's last TrafficWeights and restated under the new epoch (fencing any earlier writer).
        A controller that is still the newest writer on the topic (a rebalance that kept it the owner) keeps its
        machines and epoch."""
        async with self.lock:
            view = await self.load()
            if self.active and (view.epoch, view.epoch_owner) in ((self.epoch, self.instance), (self.epoch, None)):
                return
            self.epoch = view.epoch + 1
            self.activations += 1
            now = utcnow()
            self.machines, self.applied = {}, {}
            self.state = "active"
            for deployment, last in sorted(view.latest.items()):
                m = self.machines[deployment] = RolloutMachine.restore(last, now, self.config)
                self.applied[deployment] = list(last.applied_commands)
                restated = self._stamp(
                    last.model_copy(
                        update={
                            "seq": last.seq + 1,
                            "reason": f"controller {self.instance} took over (epoch {self.epoch}); was: {last.reason}",
                        }
                    )
                )
                m.seq, m.last = restated.seq, restated
                self.unsent.add(deployment)
                await self.send("weights", deployment, restated.encode())
                self.unsent.discard(deployment)
                log.info(
                    "controller: restored %s: %s, canary %s at %.0f%% (seq %d)",
                    deployment,
                    last.state,
                    last.canary_version,
                    100 * last.weights.get(last.canary_version or "", 0.0),
                    restated.seq,
                )
            log.info(
                "controller %s active at epoch %d: %d deployments restored from the weights topic",
                self.instance,
                self.epoch,
                len(self.machines),
            )

    def stand_by(self, why: str, *, fenced: bool = False) -> None:
        """Stop applying inputs and forget the machines (a new activation rebuilds them from the topic)."""
        if self.state == "standby" and not fenced:
            return
        self.state = "fenced" if fenced else "standby"
        self.machines, self.applied = {}, {}
        self.unsent.clear()
        (log.error if fenced else log.info)("controller %s stands by: %s", self.instance, why)

    def on_weights(self, change: WeightsChange) -> None:
        """A record the weights topic accepted (the shared reader's hook): one of a newer epoch, or of this
        epoch by another controller, means that one took over; a tombstone deletes a deployment's rollout."""
        w = change.weights
        if w is None:
            if self.machines.pop(change.deployment, None) is not None:
                log.info("controller: %s deleted from the weights topic; its rollout is forgotten", change.deployment)
            return
        if self.active and (w.epoch > self.epoch or (w.epoch == self.epoch and w.controller != self.instance)):
            self.stand_by(f"controller {w.controller} writes at epoch {w.epoch} (this one: {self.epoch})", fenced=True)

    def on_stale(self, w: TrafficWeights, why: str) -> None:
        """A record the weights topic rejected: when it is this controller's own, another one holds the epoch."""
        if self.active and w.controller == self.instance:
            self.stand_by(f"its own move was rejected: {why}", fenced=True)

    async def on_verdict(self, v: CanaryVerdict) -> Decision | None:
        await self.ready()
        async with self.lock:
            if not self.active:
                log.info("controller: verdict %s not applied: this controller is %s", v.verdict_id, self.state)
                return None
            m = self.machines.get(v.deployment)
            if m is None:
                log.info("controller: verdict %s for %s ignored: no rollout known", v.verdict_id, v.deployment)
                return None
            if m.last is not None and m.last.verdict_id == v.verdict_id:
                return self._ignored(f"verdict {v.verdict_id} already applied (seq {m.last.seq})", verdict=v)
            return await self._apply(m.on_verdict(v, utcnow()))

    async def on_command(self, cmd: ControlCommand) -> Decision:
        await self.ready()
        async with self.lock:
            if not self.active:
                return self._ignored(f"this controller is {self.state}", command=cmd)
            age = (utcnow() - cmd.ts).total_seconds()
            if age > self.command_max_age_s:
                return self._ignored(
                    f"refused: {cmd.action} sent {age:.0f} s ago, older than rollout.command_max_age_s "
                    f"({self.command_max_age_s:g} s)",
                    command=cmd,
                )
            if cmd.command_id in self.applied.get(cmd.deployment, ()):
                return self._ignored(f"command {cmd.command_id} already applied", command=cmd)
            m = self.machines.get(cmd.deployment)
            if m is None:
                m = self.machines[cmd.deployment] = RolloutMachine(cmd.deployment, self.config)
            return await self._apply(m.on_command(cmd, utcnow()))

    async def tick(self) -> list[Decision]:
        await self.ready()
        async with self.lock:
            if not self.active:
                return []
            for deployment in sorted(self.unsent):
                m = self.machines.get(deployment)
                last = m.last if m is not None and self.active else None
                if last is not None:
                    await self.send("weights", deployment, last.encode())
                    log.info("controller: re-sent %s seq %d after a failed send", deployment, last.seq)
                self.unsent.discard(deployment)
            now = utcnow()
            return [await self._apply(m.tick(now)) for m in list(self.machines.values())]

    def _ignored(
        self, reason: str, *, command: ControlCommand | None = None, verdict: CanaryVerdict | None = None
    ) -> Decision:
        d = Decision(
            kind="ignored",
            reason=reason,
            command_id=command.command_id if command else None,
            verdict_id=verdict.verdict_id if verdict else None,
        )
        self.decisions[d.kind] = self.decisions.get(d.kind, 0) + 1
        log.info("controller: %s ignored: %s", d.command_id or d.verdict_id, reason)
        return d

    def _stamp(self, w: TrafficWeights, command_id: str | None = None) -> TrafficWeights:
        """`w` with this controller's epoch and instance, and the command ids applied to its deployment."""
        applied = self.applied.setdefault(w.deployment, [])
        if command_id is not None and command_id not in applied:
            applied.append(command_id)
            del applied[:-APPLIED_MEMORY]
        return w.model_copy(
            update={"epoch": self.epoch, "controller": self.instance, "applied_commands": list(applied)}
        )

    async def _apply(self, d: Decision) -> Decision:
        self.decisions[d.kind] = self.decisions.get(d.kind, 0) + 1
        cause = d.verdict_id or d.command_id or "timer"
        if d.kind == "ignored":
            log.info("controller: %s ignored: %s", cause, d.reason)
        if d.weights is not None:
            m = self.machines.get(d.weights.deployment)
            if m is None or not self.active:  # fenced while an earlier send of this tick was on its way
                return self._ignored(f"not sent: this controller is {self.state}")
            w = self._stamp(d.weights, d.command_id)
            d = d.model_copy(update={"weights": w})
            m.last = w
            self.unsent.add(w.deployment)  # until the broker has it: the next tick re-sends the machine's last
            await self.send("weights", w.deployment, w.encode())
            self.unsent.discard(w.deployment)
            log.info(
                "controller: %s seq %d epoch %d %s %s (%s): %s",
                w.deployment,
                w.seq,
                w.epoch,
                w.state,
                w.weights,
                cause,
                w.reason,
            )
        if d.alert is not None and d.alert.rule not in RAISED_BY_ALERTER:
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
    registry = ctx.metrics.registry
    decisions = Counter(
        "llmwatch_controller_decisions_total",
        "Verdicts, commands and ticks by outcome (moved, unchanged, ignored)",
        ["input", "kind"],
        registry=registry,
    )
    active = Gauge("llmwatch_controller_active", "1 while this controller is the active one, else 0", registry=registry)
    epoch = Gauge(
        "llmwatch_controller_epoch", "Epoch of this controller's moves (0 before it ever was active)", registry=registry
    )

    async def send(role: str, key: str, value: bytes) -> None:
        fut = await ctx.topics[role].send(key=key.encode(), value=value)
        await fut  # durable before the input's offset is released
        ctx.metrics.emitted.labels(agent=STAGE).inc()

    async def load() -> WeightsView:
        await reader.sync(60.0)
        return reader.view

    controller = Controller(
        rollout_config(settings),
        send,
        load,
        instance=ctx.instance_id or "controller",
        command_max_age_s=settings.rollout.command_max_age_s,
    )
    controller.managed = True
    reader = WeightsReader(settings, controller.on_weights, on_stale=controller.on_stale)
    ctx.exit_stack.callback(reader.cancel)

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **_: Any) -> None:
        controller.owner = bool(assigned)
        if assigned:
            try:
                await controller.activate()
            except Exception:  # the next input tries again (`ready`); its offsets stay held meanwhile
                log.exception("controller: activation failed")
                controller.stand_by("activation failed")
        else:
            controller.stand_by("the consumer group gave this worker no partitions (another controller is active)")
        active.set(1 if controller.active else 0)
        epoch.set(controller.epoch)

    def consume(role: str, model: type[Any], handle: Callable[[Any], Awaitable[Decision | None]]) -> None:
        async def agent(stream: Any) -> None:
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
                    active.set(1 if controller.active else 0)

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
        active.set(1 if controller.active else 0)

    return controller
