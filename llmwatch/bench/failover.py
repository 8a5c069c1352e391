"""`llmwatch bench failover`: how long a role's partitions stall when the worker that holds them dies.

Method (private topics, `--partitions` of them; real `llmwatch worker` processes):
1. Data path: two workers run score,window. One is killed with SIGKILL (no leave-group: the broker notices only
   when its session times out); the stall is the time from the kill until the survivor holds every partition of
   both the score and the window group (its /metrics, polled every 0.1 s). The killed worker is restarted and the
   pair rebalanced before the next round.
2. Controller: two workers run the controller; a rollout is started so there is a deployment to restate. The
   active one is killed -9; the failover is the time until the other says it is active (`llmwatch_controller_active`)
   and until its first record of the next epoch is on llm.traffic.weights. Restarted before the next round.
3. For contrast, a graceful stop (SIGTERM: the worker leaves its groups) of the active controller.
Each round's figures go into the table; the median over `--rounds` is what the text quotes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import click

from llmwatch.harness import WorkerProcess, metric_sums, parse_metrics, private_run, wait_for
from llmwatch.settings import Settings, get_settings


def _held(worker: WorkerProcess, group: str) -> float:
    try:
        return metric_sums(worker.metrics(), "llmwatch_assigned_partitions", by="group").get(group, 0.0)
    except Exception:  # not serving (yet, or any more)
        return 0.0


def _active(worker: WorkerProcess) -> bool:
    try:
        return parse_metrics(worker.metrics()).get(("llmwatch_controller_active", None, None)) == 1
    except Exception:
        return False


def _epoch(settings: Settings) -> int:
    from llmwatch.weights_topic import read_weights

    return asyncio.run(read_weights(settings)).epoch


def data_path_stall(settings: Settings, log_dir: Path, rounds: int) -> list[float]:
    app, n = settings.worker.app_id, settings.partitions
    groups = (f"{app}.score", f"{app}.window")
    pair = [WorkerProcess(settings, ["score", "window"], log_dir / f"sw-{i}.log").start() for i in range(2)]
    stalls: list[float] = []
    try:
        for r in range(rounds):

            def shared() -> bool:
                return all(_held(w, g) > 0 for w in pair for g in groups) and all(
                    sum(_held(w, g) for w in pair) == n for g in groups
                )

            wait_for(shared, 600, "both score+window workers to hold partitions", interval_s=0.5, processes=pair)
            victim, survivor = pair[r % 2], pair[(r + 1) % 2]
            victim.kill()
            killed = time.monotonic()
            wait_for(
                lambda s=survivor: all(_held(s, g) == n for g in groups),
                300,
                "the survivor to hold every partition",
                interval_s=0.1,
                processes=[survivor],
            )
            stalls.append(time.monotonic() - killed)
            click.echo(f"[data path] round {r + 1}: partitions stalled {stalls[-1]:.1f} s", err=True)
            pair[r % 2] = WorkerProcess(settings, ["score", "window"], victim.log_path).start()
    finally:
        for w in pair:
            w.stop()
    return stalls


def controller_failover(settings: Settings, log_dir: Path, rounds: int) -> list[dict[str, float]]:
    from llmwatch.schemas import ControlCommand
    from llmwatch.streams.control import send_command

    pair = [WorkerProcess(settings, ["controller"], log_dir / f"ctl-{i}.log").start() for i in range(2)]
    out: list[dict[str, float]] = []
    try:
        wait_for(lambda: sum(_active(w) for w in pair) == 1, 600, "one active controller", processes=pair)
        start = ControlCommand(deployment="bench", action="start", baseline_version="v1", canary_version="v2")
        if asyncio.run(send_command(settings, start, wait_s=60)) is None:
            raise click.ClickException("the controller did not start the rollout")
        for r in range(rounds + 1):  # the last round is the graceful stop
            graceful = r == rounds
            wait_for(lambda: sum(_active(w) for w in pair) == 1, 600, "one active controller", processes=pair)
            victim = next(w for w in pair if _active(w))
            survivor = next(w for w in pair if w is not victim)
            epoch = _epoch(settings)
            if graceful:
                victim.stop()
            else:
                victim.kill()
            gone = time.monotonic()
            wait_for(
                lambda s=survivor: _active(s), 300, "the standby to activate", interval_s=0.1, processes=[survivor]
            )
            active_s = time.monotonic() - gone
            wait_for(lambda e=epoch: _epoch(settings) > e, 120, "a record of the next epoch", interval_s=0.1)
            out.append({"graceful": float(graceful), "active_s": active_s, "record_s": time.monotonic() - gone})
            how = "SIGTERM" if graceful else "kill -9"
            click.echo(f"[controller] {how}: active {active_s:.1f} s, record {out[-1]['record_s']:.1f} s", err=True)
            if not graceful:
                pair[pair.index(victim)] = WorkerProcess(settings, ["controller"], victim.log_path).start()
    finally:
        for w in pair:
            w.stop()
    return out


def _stats(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


@click.command("failover")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1), help="Kills per scenario.")
@click.option("--partitions", default=8, show_default=True, help="Partitions of each topic.")
@click.option("--write/--no-write", default=True, show_default=True, help="Update BENCHMARKS.md.")
def command(rounds: int, partitions: int, write: bool) -> None:
    """Partition stall after a worker's kill -9, and the controller's failover time."""
    from llmwatch.bench.report import write_section

    base = get_settings()
    base = base.model_copy(
        update={
            "partitions": partitions,
            "eval": base.eval.model_copy(
                update={"enabled": ["pii"], "toxicity_backend": "profanity", "injection_backend": "rules"}
            ),
            "worker": base.worker.model_copy(update={"score_process": False, "gc_freeze": False}),
        }
    )
    w = base.worker
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="llmwatch-bench-") as tmp:
        root = Path(tmp)
        with private_run(base, "bench.failover-data", data_dir=root / "data") as s:
            stalls = data_path_stall(s, root, rounds)
        with private_run(base, "bench.failover-ctl", data_dir=root / "ctl") as s:
            ctl = controller_failover(s, root, rounds)
    killed = [c for c in ctl if not c["graceful"]]
    stopped = [c for c in ctl if c["graceful"]]
    rows: list[tuple[str, str, str]] = [
        ("score+window worker killed -9: the survivor holds all its partitions", _stats(stalls), "–"),
        (
            "active controller killed -9: the standby is active / its first record of the next epoch",
            _stats([c["active_s"] for c in killed]),
            _stats([c["record_s"] for c in killed]),
        ),
        (
            "active controller stopped (SIGTERM): the same",
            _stats([c["active_s"] for c in stopped]),
            _stats([c["record_s"] for c in stopped]),
        ),
    ]
    lines = [
        "| scenario | seconds: median (min–max) | record on the weights topic |",
        "| --- | --- | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
    ]
    table = "\n".join(lines)
    click.echo(table)
    if write:
        note = (
            f"{rounds} kill(s) per scenario, {partitions} partitions, session timeout {w.session_timeout_s:g} s, "
            f"heartbeat {w.heartbeat_interval_s:g} s, rebalance timeout {w.rebalance_timeout_s:g} s (the defaults). "
            "Workers are `llmwatch worker` processes on private topics; times run from the kill (or SIGTERM) to what "
            "the survivor's /metrics say (polled every 0.1 s) and to the first record of the next epoch on "
            "llm.traffic.weights. A kill -9 is noticed only when the session times out; a stopped worker leaves its "
            "groups at once. "
            f"Load average (1 min) before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} on 2 cores."
        )
        write_section("failover", note + "\n\n" + table)
