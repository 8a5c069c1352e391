"""The controller's glue around the rollout machines: restore before anything, every move sent with its cause,
alert intents as Alert payloads, timers, and a failed send re-sent instead of forgotten."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

import pytest

from llmwatch.errors import ConfigError
from llmwatch.schemas import Alert, CanaryVerdict, ControlCommand, TrafficWeights, utcnow
from llmwatch.settings import RolloutSettings, Settings
from llmwatch.streams.controller_agent import Controller, rollout_config
from llmwatch.streams.rollout import RolloutConfig

CFG = RolloutConfig(
    steps=[0.1, 0.5, 1.0], min_step_duration_s=0, min_step_canary_n=10, hold_after_s=60, rollback_after_s=120
)


class Topics:
    """What the controller sent, decoded, in order; `fail_next` makes the next send raise (a broker outage)."""

    def __init__(self, loaded: dict[str, TrafficWeights] | None = None) -> None:
        self.sent: list[tuple[str, str, bytes]] = []
        self.loaded = loaded or {}
        self.loads = 0
        self.fail_next = False

    async def send(self, role: str, key: str, value: bytes) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker unreachable")
        self.sent.append((role, key, value))

    async def load(self) -> dict[str, TrafficWeights]:
        self.loads += 1
        return self.loaded

    def weights(self) -> list[TrafficWeights]:
        return [TrafficWeights.decode(v) for role, _, v in self.sent if role == "weights"]

    def alerts(self) -> list[Alert]:
        return [Alert.decode(v) for role, _, v in self.sent if role == "alerts"]


def verdict(result: str, canary_n: int, *, canary: str = "v2", deployment: str = "chat") -> CanaryVerdict:
    now = utcnow()
    return CanaryVerdict(
        deployment=deployment,
        baseline_version="v1",
        canary_version=canary,
        judge="msprt@1",
        result=result,  # type: ignore[arg-type]
        reason=f"test {result}",
        ts=now,
        window_start=now - timedelta(seconds=30),
        window_end=now,
        canary_n=canary_n,
    )


def start(deployment: str = "chat") -> ControlCommand:
    return ControlCommand(deployment=deployment, action="start", baseline_version="v1", canary_version="v2")


def assert_valid(ws: list[TrafficWeights]) -> None:
    for w in ws:
        assert all(0.0 <= x <= 1.0 for x in w.weights.values()) and math.isclose(sum(w.weights.values()), 1.0)


async def test_rollout_walks_the_steps_with_every_cause_recorded() -> None:
    t = Topics()
    c = Controller(CFG, t.send, t.load)
    cmd = start()
    assert (await c.on_command(cmd)).kind == "moved"
    pass_ids = []
    for n in (20, 40):
        v = verdict("pass", n)
        pass_ids.append(v.verdict_id)
        d = await c.on_verdict(v)
        assert d is not None and d.kind == "moved"
    late = await c.on_verdict(verdict("pass", 60))
    assert late is not None and late.kind == "ignored"  # promoted: the rollout is over
    ws = t.weights()
    assert_valid(ws)
    assert [w.weights["v2"] for w in ws] == [0.1, 0.5, 1.0] and [w.seq for w in ws] == [1, 2, 3]
    assert ws[0].command_id == cmd.command_id and [w.verdict_id for w in ws[1:]] == pass_ids
    assert ws[-1].state == "promoted" and t.alerts() == [] and t.loads == 1


async def test_restore_comes_first_and_continues_the_sequence() -> None:
    t = Topics()
    first = Controller(CFG, t.send, t.load)
    await first.on_command(start())
    await first.on_verdict(verdict("pass", 20))
    last = t.weights()[-1]
    assert last.step_index == 1 and last.seq == 2

    after = Topics({"chat": last})  # a new process: the weights topic is all it has
    c = Controller(CFG, after.send, after.load)
    d = await c.on_verdict(verdict("pass", 40))  # the first input triggers the restore
    assert after.loads == 1 and d is not None
    # the restored machine does not know the sample judged at this step: it counts from this verdict on
    assert d.kind == "unchanged" and after.weights() == []
    d = await c.on_verdict(verdict("pass", 60))
    assert d is not None and d.kind == "moved"
    (w,) = after.weights()
    assert w.seq == 3 and w.weights == {"v1": 0.0, "v2": 1.0} and w.state == "promoted"
    await c.ready()
    assert after.loads == 1  # once


async def test_fail_rolls_back_and_leaves_the_alert_to_the_alerter() -> None:
    """One rollback, one alert: the alerter raises canary_failed from the same verdict (and resolves it later), so
    the controller publishes no second one (it used to, with another summary)."""
    t = Topics()
    c = Controller(CFG, t.send, t.load)
    await c.on_command(start())
    v = verdict("fail", 15)
    d = await c.on_verdict(v)
    assert d is not None and d.kind == "moved"
    assert d.alert is not None and d.alert.rule == "canary_failed"  # the machine's intent is unchanged
    w = t.weights()[-1]
    assert w.weights == {"v1": 1.0, "v2": 0.0} and w.state == "rolled_back" and w.verdict_id == v.verdict_id
    assert t.alerts() == []
    assert [role for role, _, _ in t.sent] == ["weights", "weights"]


async def test_unknown_deployment_and_superseded_canary_are_ignored() -> None:
    t = Topics()
    c = Controller(CFG, t.send, t.load)
    assert await c.on_verdict(verdict("fail", 10, deployment="nobody")) is None
    await c.on_command(start())
    d = await c.on_verdict(verdict("fail", 10, canary="v0"))
    assert d is not None and d.kind == "ignored" and "superseded" in d.reason
    assert len(t.weights()) == 1
    pause = await c.on_command(ControlCommand(deployment="other", action="pause"))
    assert pause.kind == "ignored" and len(t.sent) == 1


async def test_timers_hold_then_roll_back() -> None:
    t = Topics()
    fast = CFG.model_copy(update={"hold_after_s": 0.05, "rollback_after_s": 0.2})
    c = Controller(fast, t.send, t.load)
    await c.on_command(start())
    assert [d.kind for d in await c.tick()] == ["unchanged"]
    await asyncio.sleep(0.08)
    await c.tick()
    assert t.weights()[-1].state == "holding" and t.alerts()[-1].rule == "canary_verdicts_stale"
    await asyncio.sleep(0.15)
    await c.tick()
    w = t.weights()[-1]
    assert w.state == "rolled_back" and w.weights["v2"] == 0.0 and t.alerts()[-1].rule == "canary_verdicts_missing"
    assert_valid(t.weights())


async def test_a_failed_send_is_resent_on_the_next_tick() -> None:
    t = Topics()
    c = Controller(CFG, t.send, t.load)
    await c.on_command(start())
    t.fail_next = True
    with pytest.raises(ConnectionError):
        await c.on_command(ControlCommand(deployment="chat", action="abort"))
    assert t.weights()[-1].state == "progressing" and c.unsent == {"chat"}
    await c.tick()
    w = t.weights()[-1]
    assert w.state == "rolled_back" and w.seq == 2 and c.unsent == set()


def test_rollout_config_from_settings() -> None:
    cfg = rollout_config(
        Settings(rollout=RolloutSettings(steps=[0.2, 1.0], min_sample=50, hold_timeout_s=5, rollback_timeout_s=9))
    )
    assert (
        cfg.steps == [0.2, 1.0] and cfg.min_step_canary_n == 50 and cfg.hold_after_s == 5 and cfg.rollback_after_s == 9
    )
    with pytest.raises(ConfigError, match="last step"):
        rollout_config(Settings(rollout=RolloutSettings(steps=[0.2, 0.5])))
