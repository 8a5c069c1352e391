"""Scale-out on the real broker (8 partitions) and chDB: several `llmwatch worker` processes in the layouts
docs/operators.md describes, with each role killed (-9) once, and two judge+controller instances at once.

Data path (`test_data_path_layout_with_kill_9_of_each_role`): the issue's first layout with default grouping
(one app id for all): A = sink,judge,controller,alerter; B, C = score,window. Events of 12 deployments (so every
scores partition holds window keys) arrive in three phases. The first starts with B alone; C scales out while it
streams (B keeps half its partitions, which Faust reads again from their commit while B's windows still hold the
first reads), then B is killed -9 and restarted only after C took over all its partitions (its session expired: C
restored B's emitted windows and replayed its uncommitted scores); during the third, the sink worker A is killed -9
and restarted. Events, score rows and the sum of window counts must each be exactly N, with no dead letter. (C once
joined by chance before the kill: acking the second read's duplicates committed offsets B's open windows held, and
the kill lost them. streams/hold.py now orders acks by offset; this layout makes that path happen every run.)

Control path (`test_two_judge_controllers_and_a_controller_killed_mid_rollout`): a score+sink worker and two
judge,controller,alerter workers J1, J2 in the same groups. A command older than `rollout.command_max_age_s` sits
on the command topic before they start. One controller and one judge are active; a rollout starts; after its first
promotion the active controller is killed -9 and the standby takes over; the start command is sent again with its
id; the rollout is promoted; then a third controller starts in a *new* consumer group (another app id). On the
weights topic, read back through the one reader (llmwatch/weights_topic.py): every deployment's accepted records
have consecutive seqs (no move lost or doubled), each command moved traffic at most once, the old command and the
replayed ones moved nothing, the new-group controller re-applied nothing and fenced the old one; verdicts came from
one judge instance at a time.

Reported (printed; `llmwatch bench failover` measures the same with repeats): how long the partitions of a killed
worker stalled, and how long a controller failover took. Sizes: LLMWATCH_SCALE_OUT_EVENTS (default 6,000).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from llmwatch.harness import (
    WorkerProcess,
    follow_and_produce,
    landed_counts,
    landing_report,
    metric_sums,
    parse_metrics,
    private_run,
    produce_sync,
    read_partitions,
    wait_for,
)
from llmwatch.schemas import CanaryVerdict, ControlCommand, InferenceEvent, TrafficWeights, utcnow
from llmwatch.settings import EvaluatorSettings, JudgeSettings, RolloutSettings, Settings, WorkerSettings
from llmwatch.sim.events import scenario_events
from llmwatch.streams.control import publish, send_command
from llmwatch.weights_topic import WeightsView, read_weights

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

N = int(os.environ.get("LLMWATCH_SCALE_OUT_EVENTS", "6000"))
PARTITIONS = 8
DEPLOYMENTS = 12
#: the light evaluators (model-free): the run is about partitions moving, not scoring speed
LIGHT = EvaluatorSettings(
    enabled=["toxicity", "pii", "injection"], toxicity_backend="profanity", injection_backend="rules", redact=True
)


def _base(kafka_settings: Settings, tmp_path: Path, **worker: Any) -> Settings:
    return kafka_settings.model_copy(
        update={
            "partitions": PARTITIONS,
            "eval": LIGHT,
            "worker": WorkerSettings(
                **{
                    "score_process": False,  # one process per worker: three workers share 2 cores with the broker
                    "gc_freeze": False,
                    "window_size_s": 5,
                    "window_lateness_s": 2,
                    "window_idle_close_s": 2,
                    "sink_within_s": 0.3,
                    **worker,
                }
            ),
        }
    )


def _groups(worker: WorkerProcess) -> dict[str, float]:
    """Consumer group → partitions this worker holds (its /metrics)."""
    return {str(k): v for k, v in metric_sums(worker.metrics(), "llmwatch_assigned_partitions", by="group").items()}


def _holds(worker: WorkerProcess, group: str) -> float:
    try:
        return _groups(worker).get(group, 0.0)
    except Exception:  # not serving yet
        return 0.0


def _phase(n: int, seed: int, rate: float = 400.0) -> list[InferenceEvent]:
    """`n` events of 12 deployments, event time spread at `rate`/s and ending now (windows close as they land)."""
    start = utcnow() - timedelta(seconds=n / rate)
    events = scenario_events("steady", n, seed=seed, start_ts=start, rate=rate)
    return [e.model_copy(update={"deployment": f"d{i % DEPLOYMENTS:02d}"}) for i, e in enumerate(events)]


def test_data_path_layout_with_kill_9_of_each_role(kafka_settings: Settings, tmp_path: Path) -> None:
    # a window closes on the clock only after its partition was idle 20 s: B still holds open windows when C joins
    # and when B is killed, whatever the machine's speed
    base = _base(kafka_settings, tmp_path, window_idle_close_s=20)
    with private_run(base, "test.scaleout", data_dir=tmp_path) as s:
        app = s.worker.app_id  # one app id for every worker: the default settings
        score_g, window_g, sink_g = f"{app}.score", f"{app}.window", f"{app}.sink"
        sink = ["sink", "judge", "controller", "alerter"]
        a = WorkerProcess(s, sink, tmp_path / "a.log").start()
        b = WorkerProcess(s, ["score", "window"], tmp_path / "b.log").start()
        workers = [a, b]
        try:
            wait_for(
                lambda: _holds(b, window_g) == _holds(b, score_g) == PARTITIONS and _holds(a, sink_g) > 0,
                180,
                "the sink worker and the first score+window worker",
                interval_s=0.5,
                processes=workers,
            )
            phases = [_phase(N // 3, seed=1), _phase(N // 3, seed=2), _phase(N - 2 * (N // 3), seed=3)]
            produce_sync(s, s.topics.events, phases[0])
            wait_for(
                lambda: landed_counts(s)[0] >= N // 10,
                180,
                "the first events to land",
                interval_s=0.2,
                processes=workers,
            )

            # scale out while the first phase streams: B keeps half its partitions and reads them again
            c = WorkerProcess(s, ["score", "window"], tmp_path / "c.log").start()
            workers = [a, b, c]
            wait_for(
                lambda: 0 < _holds(c, window_g) < PARTITIONS == _holds(b, window_g) + _holds(c, window_g),
                180,
                "the second score+window worker to take half the partitions",
                interval_s=0.2,
                processes=workers,
            )

            # kill -9 of a score+window worker; it comes back only after the survivor took all its partitions
            b.kill()
            killed_b = time.monotonic()
            wait_for(
                lambda: _holds(c, score_g) == PARTITIONS and _holds(c, window_g) == PARTITIONS,
                120,
                "the surviving score+window worker to take every partition",
                interval_s=0.2,
                processes=[a, c],
            )
            stall_score_window = time.monotonic() - killed_b
            produce_sync(s, s.topics.events, phases[1])
            b = WorkerProcess(s, ["score", "window"], tmp_path / "b.log").start()
            workers = [a, b, c]
            wait_for(
                lambda: _holds(b, window_g) > 0 and _holds(b, window_g) + _holds(c, window_g) == PARTITIONS,
                180,
                "the restarted worker to get partitions back",
                interval_s=0.5,
                processes=workers,
            )
            rebalanced_b = time.monotonic() - killed_b

            # kill -9 of the sink worker (it also holds the judge, controller and alerter) while it stores the
            # third phase, restarted at once
            landed_before = landed_counts(s)[0]
            produce_sync(s, s.topics.events, phases[2])
            wait_for(
                lambda: landed_counts(s)[0] > landed_before,
                180,
                "rows of the third phase",
                interval_s=0.1,
                processes=workers,
            )
            landed_at_kill = landed_counts(s)[0]  # asked before the kill: only the sink worker can answer
            a.kill()
            killed_a = time.monotonic()
            a = WorkerProcess(s, sink, tmp_path / "a.log").start()
            workers = [a, b, c]
            wait_for(lambda: _holds(a, sink_g) > 0, 180, "the sink worker to rejoin", interval_s=0.2, processes=workers)
            sink_back = time.monotonic() - killed_a

            wait_for(
                lambda: landed_counts(s)[:3] == (N, N, N),
                420,
                f"{N} events, scores and window counts",
                processes=workers,
                describe=lambda: landing_report(s, c, size_s=s.worker.window_size_s),
            )
            time.sleep(4)  # anything still replaying would change a count now
            events, scores, windowed, dlq = landed_counts(s)
            late = {w.name: parse_metrics(w.metrics()) for w in (b, c)}
            duplicates = sum(m.get(("llmwatch_late_events_total", "outcome", "duplicate"), 0) for m in late.values())
            restores = sum((w.log_path.read_text(errors="replace").count("restored ")) for w in (b, c))
            print(
                f"\nscale-out data path, {PARTITIONS} partitions, A=sink,judge,controller,alerter B,C=score,window: "
                f"events={events} scores={scores} window sum={windowed} dlq={dlq}; "
                f"score+window worker killed -9: its partitions stalled {stall_score_window:.1f} s until the survivor "
                f"held all {PARTITIONS} (session timeout {s.worker.session_timeout_s:g} s), restarted worker had "
                f"partitions back {rebalanced_b:.1f} s after the kill; sink worker killed -9 and restarted: its "
                f"partitions were owned again {sink_back:.1f} s after the kill ({landed_at_kill} of {N} events had "
                f"landed); window restores {restores}, "
                f"replayed scores recognised as duplicates {duplicates:.0f}"
            )
            assert (events, scores, windowed, dlq) == (N, N, N, 0)
            assert stall_score_window <= s.worker.session_timeout_s + 20  # ≤ 15 s on an idle machine
            assert all(w.alive() for w in workers)
        finally:
            for w in workers:
                w.stop()


# --- the control path ---------------------------------------------------------------------------------------------

CANARY_ROLLOUT = RolloutSettings(
    steps=[0.2, 0.5, 1.0],
    min_sample=200,
    min_step_duration_s=3,
    hold_timeout_s=60,
    rollback_timeout_s=120,
    tick_interval_s=1,
    command_max_age_s=120,
)
#: Test-sized judge (tests/integration/test_canary_rollout.py): one-second strata, no metric critical, a healthy
#: canary passes on a few hundred requests (forbidden regressions widened ×8; fail margins stay as strict)
CANARY_JUDGE = JudgeSettings(interval_s=1, stratum_s=1, lateness_s=1, settle_s=0.5, critical=[], pass_margin_scale=8)


def _active(workers: list[WorkerProcess]) -> list[WorkerProcess]:
    """The workers whose controller says it is the active one."""
    out = []
    for w in workers:
        try:
            if parse_metrics(w.metrics()).get(("llmwatch_controller_active", None, None)) == 1:
                out.append(w)
        except Exception:
            continue
    return out


def _weights_log(s: Settings) -> tuple[list[TrafficWeights], WeightsView]:
    """Every record on the weights topic in order, and the view the one reader makes of them."""
    view = WeightsView()
    records: list[TrafficWeights] = []
    for key, value in read_partitions(s, "weights")[0]:
        if value is not None:
            records.append(TrafficWeights.decode(value))
        view.apply_record(key, value)
    return records, view


def _state(s: Settings, deployment: str) -> TrafficWeights | None:
    return asyncio.run(read_weights(s)).latest.get(deployment)


def test_two_judge_controllers_and_a_controller_killed_mid_rollout(kafka_settings: Settings, tmp_path: Path) -> None:
    # PII only, as tests/integration/test_canary_rollout.py: a healthy canary passes on a few hundred requests
    pii = EvaluatorSettings(enabled=["pii"], redact=True)
    sections = {"rollout": CANARY_ROLLOUT, "judge": CANARY_JUDGE, "eval": pii}
    base = _base(kafka_settings, tmp_path).model_copy(update=sections)
    with private_run(base, "test.scaleout-ctl", data_dir=tmp_path) as s:
        app = s.worker.app_id
        old = ControlCommand(
            deployment="stale",
            action="start",
            baseline_version="b",
            canary_version="c",
            requested_by="an operator, ten minutes ago",
            ts=utcnow() - timedelta(minutes=10),
        )
        asyncio.run(publish(s, s.topics.control, old.deployment, old.encode()))  # waiting before any controller

        singles = ["judge", "controller", "alerter"]
        data = WorkerProcess(s, ["score", "sink"], tmp_path / "data.log").start()
        j1 = WorkerProcess(s, singles, tmp_path / "j1.log").start()
        j2 = WorkerProcess(s, singles, tmp_path / "j2.log").start()
        j3: WorkerProcess | None = None
        everyone = [data, j1, j2]
        stop, sent = threading.Event(), [0]
        traffic = threading.Thread(target=follow_and_produce, args=(s, stop, 60.0, sent), daemon=True)
        try:
            wait_for(
                lambda: (
                    len(_active([j1, j2])) == 1
                    and _holds(j1, f"{app}.judge") + _holds(j2, f"{app}.judge") == PARTITIONS
                    and _holds(data, f"{app}.score") == PARTITIONS
                ),
                180,
                "one active controller and one active judge",
                interval_s=0.5,
                processes=everyone,
            )
            assert {_holds(j1, f"{app}.judge"), _holds(j2, f"{app}.judge")} == {0.0, PARTITIONS}

            start = ControlCommand(
                deployment="demo", action="start", baseline_version="baseline", canary_version="canary"
            )
            first = asyncio.run(send_command(s, start, wait_s=60))
            assert first is not None and first.state == "progressing" and first.step_index == 0
            traffic.start()

            wait_for(
                lambda: (w := _state(s, "demo")) is not None and w.step_index >= 1,
                180,
                "the first promotion",
                processes=everyone,
            )
            (victim,) = _active([j1, j2])
            survivor = j2 if victim is j1 else j1
            epoch_before = asyncio.run(read_weights(s)).epoch
            victim.kill()
            killed = time.monotonic()
            everyone = [data, survivor]
            wait_for(
                lambda: asyncio.run(read_weights(s)).epoch > epoch_before,
                120,
                "the standby controller to take over (a record of a newer epoch)",
                interval_s=0.2,
                processes=everyone,
            )
            failover = time.monotonic() - killed
            assert _active([survivor]) == [survivor]

            # the start again, with its id: applied once already, so nothing moves
            assert asyncio.run(send_command(s, start.model_copy(update={"ts": utcnow()}), wait_s=8)) is None

            wait_for(
                lambda: (w := _state(s, "demo")) is not None and w.state == "promoted",
                240,
                "the canary to be promoted",
                processes=everyone,
            )
            stop.set()
            traffic.join(30)

            # a controller in a new consumer group: rebuilds from the weights topic, applies no old command, fences
            j3 = WorkerProcess(
                s,
                ["controller"],
                tmp_path / "j3.log",
                extra_env={"LLMWATCH_WORKER__APP_ID": f"{app}-newgroup"},
            ).start()
            everyone = [data, survivor, j3]
            wait_for(lambda: _active([j3]) == [j3], 180, "the new-group controller to activate", processes=everyone)
            wait_for(lambda: _active([survivor]) == [], 60, "the old controller to be fenced", processes=everyone)
            time.sleep(3)  # a re-applied old command would be on the topic by now

            records, view = _weights_log(s)
            accepted = [r for r in records if view_accepts(records, r)]
            verdicts = [CanaryVerdict.decode(v) for part in read_partitions(s, "verdicts").values() for _, v in part]
        finally:
            stop.set()
            for w in [data, j1, j2, *([j3] if j3 else [])]:
                w.stop()

    demo = [r for r in accepted if r.deployment == "demo"]
    seqs = [r.seq for r in demo]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"a move lost or doubled: seqs {seqs}"
    moves = [r for prev, r in zip([None, *demo], demo, strict=False) if prev is None or _moved(prev, r)]
    assert [(m.state, m.weights["canary"]) for m in moves] == [
        ("progressing", 0.2),
        ("progressing", 0.5),
        ("promoted", 1.0),
    ], [(m.state, m.weights, m.reason) for m in demo]
    causes = [m.command_id for m in moves if m.command_id]
    assert causes == [start.command_id], "the start moved traffic more than once"
    assert not [r for r in records if r.deployment == "stale"], "a command older than command_max_age_s was applied"
    epochs = sorted({r.epoch for r in demo})
    assert len(epochs) >= 3, f"epochs {epochs}: a takeover and a new-group activation each raise it"
    assert view.latest["demo"].state == "promoted" and view.latest["demo"].controller == _instance_of(j3, records)
    # one judge active at a time: the instance that makes the verdicts changes at most once (the judge of the
    # killed worker may have been the active one)
    instances = [v.judge_instance for v in sorted(verdicts, key=lambda v: v.ts)]
    switches = sum(1 for x, y in pairwise(instances) if x != y)
    assert None not in instances and switches <= 1, f"verdicts from {set(instances)} interleaved ({switches} switches)"
    print(
        f"\nscale-out control path: {len(accepted)} weights records accepted, {view.rejected} rejected as stale; "
        f"moves {[(m.state, m.weights['canary']) for m in moves]}; epochs {epochs}; {len(verdicts)} verdicts from "
        f"{len(set(instances))} judge instance(s); active controller killed -9 mid-rollout: the standby's first "
        f"record of a newer epoch {failover:.1f} s after the kill (session timeout {s.worker.session_timeout_s:g} s); "
        f"{sent[0]} events of traffic"
    )
    assert failover <= s.worker.session_timeout_s + 20  # ≤ 15 s on an idle machine


def view_accepts(records: list[TrafficWeights], record: TrafficWeights) -> bool:
    """Whether the one reader applies `record` when it reads `records` in order."""
    view = WeightsView()
    for r in records:
        change = view.apply(r)
        if r is record:
            return change is not None
    return False


def _moved(prev: TrafficWeights, r: TrafficWeights) -> bool:
    return (prev.weights, prev.state, prev.canary_version) != (r.weights, r.state, r.canary_version)


def _instance_of(worker: WorkerProcess | None, records: list[TrafficWeights]) -> str | None:
    """The controller instance id of `worker` (host:pid) as its records name it."""
    if worker is None:
        return None
    found = [r.controller for r in records if r.controller and r.controller.endswith(f":{worker.pid}")]
    return found[-1] if found else None
