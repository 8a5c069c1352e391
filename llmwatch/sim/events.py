"""Complete InferenceEvents of a scenario without HTTP: what a gateway in front of the simulated engine would emit."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from llmwatch.inference.engine_base import ChatMessage, GenerationRequest
from llmwatch.inference.router import Router
from llmwatch.schemas import SYSTEM_CHARS_ATTR, InferenceEvent, TrafficWeights, utcnow

from .corpus import load_corpus
from .engine import SimulatedEngine, default_demo_engine
from .scenarios import draw_prompt, draw_user, get_scenario


def scenario_events(
    name: str,
    n: int,
    seed: int = 0,
    start_ts: datetime | None = None,
    rate: float | None = 10.0,
    canary_weight: float = 0.5,
    deployment: str = "demo",
    *,
    onset_s: float | None = None,
    engine: SimulatedEngine | None = None,
    baseline: str = "baseline",
    canary: str = "canary",
    source: str = "loadgen",
) -> Iterator[InferenceEvent]:
    """`n` InferenceEvents of scenario `name` as a gateway in front of the simulated engine would emit them.

    Event i is stamped `start_ts + i / rate` (scenario time i / rate drives the onset); with `rate=None` it is
    stamped with the wall clock when generated. The same arguments give the same events, ids included.
    """
    scenario = get_scenario(name, onset_s).model_copy(update={"target_version": canary})
    engine = engine or default_demo_engine(seed)
    corpus = load_corpus()
    rng = random.Random(f"scenario:{seed}")
    router = Router({deployment: baseline}, rng=random.Random(f"router:{seed}"))
    if canary != baseline:
        router.apply(
            TrafficWeights(
                deployment=deployment,
                weights={baseline: 1.0 - canary_weight, canary: canary_weight},
                baseline_version=baseline,
                canary_version=canary,
            )
        )
    wall_start = time.monotonic()
    start = start_ts or utcnow()
    run_id = hashlib.sha256(f"{seed}:{start.isoformat()}:{deployment}:{name}".encode()).hexdigest()[:16]
    system = ChatMessage("system", corpus.system_prompt)
    for i in range(n):
        t = i / rate if rate else time.monotonic() - wall_start
        ts = start + timedelta(seconds=t) if rate else utcnow()
        user_id, session_id = draw_user(rng)
        route = router.choose(deployment, user_id)
        spec = draw_prompt(scenario.prompt_mix(t), rng, corpus)
        request = GenerationRequest(
            model_version=route.model_version,
            messages=(system, ChatMessage("user", spec.text)),
            seed=i,
            request_id=f"{run_id}-{i}",
            hints={**scenario.hints(t), "item": spec.item_id},
        )
        outcome = engine.plan(request, random.Random(f"{seed}:{i}"))
        yield InferenceEvent(
            event_id=f"{run_id}-{i:08d}",
            ts=ts,
            deployment=deployment,
            model=outcome.model,
            model_version=route.model_version,
            variant=route.variant,
            experiment=route.experiment,
            user_id=user_id,
            session_id=session_id,
            prompt=request.text,
            response=outcome.response,
            context=list(outcome.context) if outcome.context else None,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            ttft_ms=None if outcome.error else round(outcome.ttft_ms, 3),
            tpot_ms=round(outcome.tpot_ms, 3) if outcome.output_tokens > 1 else None,
            e2e_ms=round(outcome.e2e_ms, 3),
            status="error" if outcome.error else "ok",
            error=outcome.error,
            finish_reason=outcome.finish_reason,
            engine=engine.name,
            simulated=True,
            source=source,
            cost_usd=round(outcome.cost_usd, 8),
            attributes={
                "scenario": name,
                "sim.behaviour": outcome.behaviour,
                "sim.prompt_kind": spec.kind,
                SYSTEM_CHARS_ATTR: str(request.system_chars),
                **({"sim.topic_set": spec.topic_set} if spec.topic_set else {}),
            },
        )
