"""`llmwatch controller`, `llmwatch rollout …`, `llmwatch experiment report`."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from llmwatch.errors import LlmwatchError


@click.command("controller")
@click.option("--web-port", type=int, default=6067, show_default=True, help="Port of its /metrics page (0: any).")
@click.option("--loglevel", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def controller(web_port: int, loglevel: str) -> None:
    """The traffic controller alone (a worker running only the controller agent).

    It joins the controller's consumer group (`<app_id>.controller`) like the controller agent of any
    `llmwatch worker`: one of them is active, the others stand by and take over within the session timeout.
    """
    from llmwatch.settings import get_settings
    from llmwatch.streams.worker import run_worker

    settings = get_settings()
    worker = settings.worker.model_copy(update={"web_port": web_port})
    run_worker(settings.model_copy(update={"worker": worker}), ["controller"], loglevel=loglevel)


@click.group("rollout")
def rollout() -> None:
    """Start, steer and inspect canary rollouts (commands go to the controller through Kafka)."""


def _send(deployment: str, action: str, wait: bool, timeout: float, **fields: str | None) -> None:
    from llmwatch.schemas import ControlCommand
    from llmwatch.settings import get_settings
    from llmwatch.streams.control import send_command

    try:
        cmd = ControlCommand(deployment=deployment, action=action, **fields)  # type: ignore[arg-type]
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    settings = get_settings()
    result = asyncio.run(send_command(settings, cmd, wait_s=timeout if wait else None))
    click.echo(f"sent {action} for {deployment} (command {cmd.command_id})")
    if not wait:
        return
    if result is None:
        raise LlmwatchError(
            f"no weights for command {cmd.command_id} within {timeout:.0f} s: the controller ignored it "
            "(see its log for why) or is not running"
        )
    click.echo(_describe(result))


def _describe(w: object) -> str:
    from llmwatch.schemas import TrafficWeights

    assert isinstance(w, TrafficWeights)
    shares = ", ".join(f"{v} {share:.1%}" for v, share in sorted(w.weights.items()))
    return (
        f"{w.deployment}: {w.state}, step {w.step_index}, seq {w.seq}: {shares}\n"
        f"  baseline {w.baseline_version}, canary {w.canary_version or '-'}; {w.updated_at.isoformat()}\n"
        f"  reason: {w.reason}"
        + (f"\n  verdict {w.verdict_id}" if w.verdict_id else "")
        + (f"\n  command {w.command_id}" if w.command_id else "")
    )


_wait = click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the controller's move.")
_timeout = click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for it.")
_reason = click.option("--reason", default="", help="Why (kept in the audit).")


@rollout.command("start")
@click.argument("deployment")
@click.option("--canary", "canary_version", required=True, help="Model version to roll out.")
@click.option("--baseline", "baseline_version", help="Version serving now (needed for a first rollout).")
@_wait
@_timeout
@_reason
def start(
    deployment: str, canary_version: str, baseline_version: str | None, wait: bool, timeout: float, reason: str
) -> None:
    """Put CANARY on the first step of DEPLOYMENT's rollout."""
    _send(
        deployment,
        "start",
        wait,
        timeout,
        canary_version=canary_version,
        baseline_version=baseline_version,
        reason=reason,
    )


def _simple(action: str, doc: str) -> None:
    @rollout.command(action, help=doc)
    @click.argument("deployment")
    @_wait
    @_timeout
    @_reason
    def command(deployment: str, wait: bool, timeout: float, reason: str) -> None:
        _send(deployment, action, wait, timeout, reason=reason)


_simple("pause", "Hold DEPLOYMENT's rollout at its step (fail verdicts still roll back).")
_simple("resume", "Resume a paused rollout.")
_simple("promote", "Send all of DEPLOYMENT's traffic to the canary now.")
_simple("abort", "Roll DEPLOYMENT's canary back to 0% now.")


@rollout.command("status")
@click.argument("deployment", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the TrafficWeights as JSON.")
@click.option("--rps", type=click.FloatRange(min=0.001), default=None,
              help="Traffic the guarantees are stated at (default: what the latest verdict saw).")  # fmt: skip
@click.option("--minutes", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Time at the step the 'rolled back' guarantee assumes.")  # fmt: skip
@click.option("--verdicts/--no-verdicts", default=True, show_default=True, help="Show the latest verdicts too.")
def status(deployment: str | None, as_json: bool, rps: float | None, minutes: float, verdicts: bool) -> None:
    """The current weights of DEPLOYMENT (or of every deployment), read from the weights topic; for a rollout in
    progress, the judge's latest verdict and what it is sure to stop at the current step and traffic."""
    from llmwatch.settings import get_settings
    from llmwatch.streams.rollout import ACTIVE
    from llmwatch.weights_topic import read_weights

    settings = get_settings()
    view = asyncio.run(read_weights(settings))
    if not view.topic_exists:
        raise LlmwatchError(f"the weights topic {settings.topics.weights} does not exist (run `llmwatch kafka up`)")
    latest = view.latest
    chosen = [latest[deployment]] if deployment in latest else [] if deployment else list(latest.values())
    if deployment and not chosen:
        raise LlmwatchError(f"no weights for deployment {deployment!r} on the weights topic")
    active = [w for w in chosen if w.state in ACTIVE and w.canary_version]
    found: dict[str, Any] = {}
    if verdicts and active and not as_json:
        from llmwatch.streams.verdict_tail import latest_verdicts

        found = asyncio.run(latest_verdicts(settings))
    for w in sorted(chosen, key=lambda w: w.deployment):
        if as_json:
            click.echo(w.model_dump_json())
            continue
        click.echo(_describe(w))
        if w in active:
            click.echo(_judged(w, found.get(w.deployment), settings, rps, minutes))
    if not chosen:
        click.echo("no rollouts yet", err=True)


def _judged(w: Any, v: Any, settings: Any, rps: float | None, minutes: float) -> str:
    """The latest verdict about the current canary and the guarantees at its step."""
    from llmwatch.evaluators.canary.guarantees import Traffic, guarantees
    from llmwatch.streams.judging import judge_config

    lines: list[str] = []
    rates: dict[str, float] = {}
    shares: dict[str, float] = {}
    if v is not None and v.canary_version == w.canary_version:
        lines.append(f"  last verdict {v.ts.isoformat()} ({v.judge}): {v.result}: {v.reason[:400]}")
        if v.observed_share is not None:
            flag = "SAMPLE-RATIO MISMATCH: the rollout holds" if v.srm_detected else "no sample-ratio mismatch"
            lines.append(
                f"  canary share {v.observed_share:.2%} of this step's requests at weight "
                f"{(v.canary_weight or 0):.0%} ({flag})"
            )
        if v.requests_needed:
            lines.append(f"  a decision needs ~{v.requests_needed:,} more requests")
        span = (v.window_end - v.window_start).total_seconds()
        if rps is None and span > 0:
            rps = (v.baseline_n + v.canary_n) / span
        sources = {"error_rate": "errors", "toxicity_rate": "toxicity", "pii_leak_rate": "pii_leak",
                   "injection_success_rate": "injection_success", "hallucination_rate": "hallucination"}  # fmt: skip
        trials = {m.metric: m.baseline_n + m.canary_n for m in v.metrics if m.quantile is None}
        for m in v.metrics:
            if m.metric in sources and m.baseline_value is not None and m.baseline_value > 0:
                rates[sources[m.metric]] = m.baseline_value
                if trials.get("error_rate"):
                    shares[sources[m.metric]] = min(1.0, trials[m.metric] / trials["error_rate"])
    else:
        lines.append("  no verdict about this canary yet")
    rps = rps or 100.0
    config = judge_config(settings)
    weight = w.weights.get(w.canary_version, 0.0)
    traffic = Traffic(rps=rps, base_rates=rates, measured_share=shares)
    rows = [g for g in guarantees(config, traffic, step_s=minutes * 60) if abs(g.weight - weight) < 1e-9]
    if not rows:
        return "\n".join(lines)
    g0 = rows[0]
    budget = "no evidence demanded by the risk budget" if g0.alpha >= 1 else f"risk budget α {g0.alpha:.2g}"
    lines.append(
        f"  what the judge is sure to stop at this step ({100 * g0.weight:g}% → {100 * g0.next_weight:g}%, {budget}) "
        f"at {rps:,.0f} requests/s:"
    )
    lines.append(f"    {'metric':<24} {'blocked (cannot pass)':<24} rolled back within {minutes:g} min (≥ 90 %)")
    lines += [f"    {g.metric:<24} {g.blocked:<24} {g.rolled_back}" for g in rows]
    return "\n".join(lines)


@click.group("experiment")
def experiment() -> None:
    """A/B experiment reports."""


@experiment.command("report")
@click.argument("name")
@click.option("--control", help="Control arm (model_version); default: the arm with the most requests.")
@click.option("--alpha", default=0.05, show_default=True, help="Significance level (two-sided).")
@click.option("--power", default=0.8, show_default=True, help="Power for the sample-size guidance.")
@click.option("--mde", default=0.02, show_default=True, help="Smallest thumbs-up rate change worth detecting.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(name: str, control: str | None, alpha: float, power: float, mde: float, as_json: bool) -> None:
    """Arms of experiment NAME compared on feedback, quality and latency, from ClickHouse."""
    from llmwatch.db.owner import open_query_client
    from llmwatch.db.queries import experiment_rows
    from llmwatch.evaluators.experiments import arms_from_rows, render_report
    from llmwatch.evaluators.metrics import Thresholds
    from llmwatch.settings import get_settings

    settings = get_settings()
    client = open_query_client(settings)
    try:
        arms = arms_from_rows(*experiment_rows(client, name, Thresholds.from_settings(settings.eval)))
    finally:
        client.close()
    if not arms:
        raise LlmwatchError(f"experiment {name!r} has no events in ClickHouse")
    text, data = render_report(name, arms, control=control, alpha=alpha, power=power, mde=mde)
    if as_json:
        json.dump(data, sys.stdout, indent=2, default=str)
        click.echo()
    else:
        click.echo(text)


def register(cli: click.Group) -> None:
    for c in (controller, rollout, experiment):
        cli.add_command(c)
