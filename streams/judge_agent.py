"""Judge agent: llm.eval.scores → the current canary's evidence per deployment → CanaryVerdict.

The logic lives in streams/judging.py (`JudgeCore`, no Faust): which canary is current comes from the weights topic,
read whole at start and then followed; each score lands in its time stratum; a verdict goes out every
`judge.interval_s` (and after `judge.every_n` new scores, when set), only when new scores arrived.

State is in memory on purpose. The judge's tests are valid at any sample size, so a restart that starts the
evidence afresh (offsets are committed as scores are read) only makes the next pass slower, never unsafe.
The judge needs both arms of a deployment, and scores are keyed by deployment/model_version, so it must see
every scores partition: its consumer group gives them all to one worker (streams/worker.py, SINGLE_OWNER); other
workers that run it stand by, and the one that takes over starts the evidence afresh. Verdicts name the judge
instance that made them (`judge_instance`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import Counter

from llmwatch.schemas import EvalScores, utcnow
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES
from llmwatch.weights_topic import WeightsChange, WeightsReader

from .context import WorkerContext
from .decode import Decoded, decode
from .judging import JudgeCore, core_from_settings, judge_config

log = logging.getLogger(__name__)
STAGE = "judge"

__all__ = ["JudgeCore", "install", "judge_config"]


def install(ctx: WorkerContext) -> JudgeCore:
    settings, app = ctx.settings, ctx.app
    core = core_from_settings(settings)
    verdicts = Counter(
        "llmwatch_judge_verdicts_total", "Verdicts the judge emitted", ["result"], registry=ctx.metrics.registry
    )
    scores = Counter(
        "llmwatch_judge_scores_total", "Scores the judge read, by outcome", ["outcome"], registry=ctx.metrics.registry
    )

    def on_weights(change: WeightsChange) -> None:
        what = core.on_deleted(change.deployment) if change.weights is None else core.on_weights(change.weights)
        if what:
            log.info("judge: %s", what)

    follower = WeightsReader(settings, on_weights)
    ctx.exit_stack.callback(follower.cancel)
    lock = asyncio.Lock()

    async def emit(deployment: str) -> None:
        async with lock:  # one verdict at a time, so their timestamps reach the topic in order
            v = core.verdict(deployment, utcnow())  # a few ms: strata are folded in as they close
            if v is None:
                return
            v = v.model_copy(update={"judge_instance": ctx.instance_id or None})
            await ctx.topics["verdicts"].send(key=deployment.encode(), value=v.encode())
        verdicts.labels(result=v.result).inc()
        ctx.metrics.emitted.labels(agent=STAGE).inc()
        log.info(
            "verdict %s for %s %s→%s: %s (canary n=%d, baseline n=%d) %s",
            v.verdict_id,
            deployment,
            v.baseline_version,
            v.canary_version,
            v.result,
            v.canary_n,
            v.baseline_n,
            v.reason[:200],
        )

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **_: Any) -> None:
        # one judge is active (its group gives every scores partition to one worker); whenever that changes, the
        # evidence restarts: a judge that takes over has not seen what the last one saw
        owner = bool(assigned)
        if owner != state["owner"]:
            state["owner"] = owner
            n = core.reset_evidence()
            log.info(
                "judge %s %s; evidence of %d rollouts starts afresh",
                ctx.instance_id,
                "active" if owner else "stands by",
                n,
            )

    state = {"owner": False}

    @app.agent(ctx.topics["scores"], name="llmwatch.judge")
    async def judge(stream: Any) -> None:
        follower.start()
        await follower.caught_up.wait()  # know the current canaries before reading any score
        async for batch in stream.take_events(512, within=0.5):
            ctx.metrics.events.labels(agent=STAGE).inc(len(batch))
            for event in batch:
                result = decode(EvalScores, event.message.value, max_bytes=MAX_MESSAGE_BYTES)
                if not isinstance(result, Decoded):
                    scores.labels(outcome="unreadable").inc()  # the window and sink agents dead-letter it
                    continue
                scores.labels(outcome=core.on_score(result.payload)).inc()
            await emit_all(core.due_by_count())

    async def emit_all(deployments: list[str]) -> None:
        for deployment in deployments:
            try:
                await emit(deployment)
            except Exception:  # the evidence is kept: the next score brings the next look
                log.exception("judge: verdict for %s failed", deployment)

    @app.timer(interval=settings.judge.interval_s, name="llmwatch.judge.clock")
    async def clock() -> None:
        await emit_all(core.pending())

    return core
