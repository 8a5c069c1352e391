"""The controller's glue around the rollout machines: restore before anything, every move sent with its cause,
alert intents as Alert payloads, timers, a failed send re-sent instead of forgotten; and (issue 22) epochs,
fencing, commands applied once and refused when old."""

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
from llmwatch.weights_topic import WeightsChange, WeightsView

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

    async def load(self) -> WeightsView:
        """The weights topic read to its end: what was loaded, then what this controller sent since."""
        self.loads += 1
        view = WeightsView()
        for w in self.loaded.values():
            view.apply(w)
        for w in self.weights():
            view.apply(w)
        return view

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
    c = Controller(CFG, after.send, after.load, instance="second")
    d = await c.on_verdict(verdict("pass", 40))  # the first input triggers the restore
    assert after.loads == 1 and d is not None
    # the takeover restates the deployment under the next epoch, weights unchanged
    (restated,) = after.weights()
    assert (restated.seq, restated.epoch, restated.controller) == (3, last.epoch + 1, "second")
    assert restated.weights == last.weights and restated.state == last.state and "took over" in restated.reason
    # the restored machine does not know the sample judged at this step: it counts from this verdict on
    assert d.kind == "unchanged"
    d = await c.on_verdict(verdict("pass", 60))
    assert d is not None and d.kind == "moved"
    w = after.weights()[-1]
    assert w.seq == 4 and w.weights == {"v1": 0.0, "v2": 1.0} and w.state == "promoted" and w.epoch == 2
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


async def test_a_newer_epoch_fences_this_controller() -> None:
    t = Topics()
    c = Controller(CFG, t.send, t.load, instance="old")
    await c.on_command(start())
    assert c.active and c.epoch == 1 and t.weights()[-1].epoch == 1
    takeover = t.weights()[-1].model_copy(update={"seq": 2, "epoch": 2, "controller": "new"})
    c.on_weights(WeightsChange("chat", takeover))  # the other controller's restatement, read from the topic
    assert c.state == "fenced" and c.machines == {}
    assert await c.on_verdict(verdict("fail", 10)) is None  # a fenced controller moves nothing
    abort = await c.on_command(ControlCommand(deployment="chat", action="abort"))
    assert abort.kind == "ignored" and "fenced" in abort.reason
    assert len(t.weights()) == 1


async def test_its_own_move_rejected_for_a_taken_epoch_fences_it() -> None:
    t = Topics()
    c = Controller(CFG, t.send, t.load, instance="late")
    await c.on_command(start())
    mine = t.weights()[-1]
    c.on_stale(mine, "epoch 1 belongs to controller early (fenced)")
    assert c.state == "fenced"
    c2 = Controller(CFG, t.send, t.load, instance="other")
    c2.on_stale(mine, "not mine")  # a stale record of someone else does not concern it
    assert c2.state == "standby"


async def test_commands_apply_once_and_old_ones_are_refused() -> None:
    t = Topics()
    c = Controller(CFG, t.send, t.load, command_max_age_s=60)
    cmd = start()
    assert (await c.on_command(cmd)).kind == "moved"
    assert t.weights()[-1].applied_commands == [cmd.command_id]
    again = await c.on_command(cmd)
    assert again.kind == "ignored" and "already applied" in again.reason
    old = ControlCommand(deployment="chat", action="abort", ts=utcnow() - timedelta(seconds=61))
    refused = await c.on_command(old)
    assert refused.kind == "ignored" and "older than rollout.command_max_age_s" in refused.reason
    assert len(t.weights()) == 1

    # a controller that takes over (or starts in a new consumer group and replays the command topic) knows the
    # applied ids from the compacted topic: the replayed start is not applied again
    after = Topics({"chat": t.weights()[-1]})
    c2 = Controller(CFG, after.send, after.load, instance="next")
    replayed = await c2.on_command(cmd)
    assert replayed.kind == "ignored" and "already applied" in replayed.reason
    assert [w.state for w in after.weights()] == ["progressing"]  # only the restatement


async def test_a_replayed_verdict_is_applied_once() -> None:
    t = Topics()
    c = Controller(CFG, t.send, t.load)
    await c.on_command(start())
    v = verdict("pass", 20)
    assert (await c.on_verdict(v)).kind == "moved"  # type: ignore[union-attr]
    d = await c.on_verdict(v)
    assert d is not None and d.kind == "ignored" and "already applied" in d.reason


async def test_a_rebalance_that_keeps_the_owner_keeps_its_epoch() -> None:
    t = Topics()
    c = Controller(CFG, t.send, t.load, instance="me")
    c.managed = c.owner = True
    await c.activate()
    await c.on_command(start())
    sent = len(t.sent)
    await c.activate()  # the group rebalanced and gave it everything again: nobody else wrote meanwhile
    assert c.epoch == 1 and len(t.sent) == sent and c.activations == 1
