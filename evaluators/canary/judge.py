"""The judge: evidence → classifier per test → scorer → a CanaryVerdict whose reasons a person can act on.

`Judge` is versioned (`JUDGE_NAME`): the statistics, the default policy (config.py) and the labels are part of the
version, so a verdict says which rules made it. It keeps no state of its own: the rollout's `Evidence` does.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any

from ddsketch.mapping import LogarithmicMapping

from llmwatch.schemas import CanaryVerdict, MetricVerdict

from .classify import Result, Test, classify, what
from .config import JudgeConfig
from .evidence import Evidence
from .score import Overall, score

JUDGE_NAME = "stratified@2"


def _e(log_e: float) -> float:
    return math.exp(min(log_e, 700.0))


class Judge:
    """Versioned canary judge over a rollout's `Evidence`."""

    name = JUDGE_NAME

    def __init__(self, config: JudgeConfig | None = None) -> None:
        self.config = config or JudgeConfig()
        self.mapping = LogarithmicMapping(self.config.sketch_accuracy)

    def new_evidence(
        self, *, deployment: str, baseline: str, canary: str, started_at: datetime, weight: float
    ) -> Evidence:
        return Evidence(
            self.config, deployment=deployment, baseline=baseline, canary=canary, started_at=started_at, weight=weight
        )

    def results(self, ev: Evidence) -> tuple[list[Result], float]:
        """Every test's label as of the closed strata, and the level of the next step's risk budget."""
        cfg = self.config
        next_weight = cfg.next_weight(ev.weight)
        alpha = cfg.pass_alpha(next_weight)
        base, can = ev.step_data()
        requests = ev.total[0].requests + ev.total[1].requests
        out = []
        for t in ev.tests:
            tb, tc = t.trials(base), t.trials(can)
            share = tc / (tb + tc) if tb + tc > 0 else ev.weight
            out.append(
                classify(
                    t,
                    cfg,
                    pending_weight=ev.pending_weight(),
                    pass_alpha=alpha,
                    share=share,
                    events_per_request=t.fail.events / requests if requests > 0 else 0.0,
                    step_base=base,
                    step_can=can,
                    mapping=self.mapping,
                )
            )
        return self._grace(ev, out), alpha

    def _grace(self, ev: Evidence, results: list[Result]) -> list[Result]:
        """A non-critical metric still undecided `noncritical_grace_s` after every other gating metric passed (and the
        canary sample is complete) has too little data to decide: NO_DATA, not gating, as the issue's sparse metrics
        ask. Critical metrics never get this: their forbidden regression must be ruled out."""
        pending = {i for i, (t, r) in enumerate(zip(ev.tests, results, strict=True))
                   if not t.spec.critical and r.label in ("INCONCLUSIVE", "NO_DATA")}  # fmt: skip
        others_ok = ev.canary_n >= self.config.min_canary_n and all(
            r.label == "PASS" or not r.gating for i, r in enumerate(results) if i not in pending
        )
        key = (ev.segment, ev.weight)
        if not others_ok or ev.window_end is None:
            ev.others_passed_at = None
            return results
        undecided = [i for i in sorted(pending) if results[i].label == "INCONCLUSIVE"]
        if ev.others_passed_at is None or ev.others_passed_at[0] != key:
            ev.others_passed_at = (key, ev.window_end)
        waited = (ev.window_end - ev.others_passed_at[1]).total_seconds()
        if not undecided or waited < self.config.noncritical_grace_s:
            return results
        out = list(results)
        for i in undecided:
            r = out[i]
            why = (
                f"NO_DATA: {what(ev.tests[i])}: undecided {waited / 60:.0f} min after every other metric passed "
                f"({r.events:,.0f} events, same-minute ratio ×{r.ratio or 0:.2f}): too little data to decide "
                "(not critical: does not block)"
            )
            out[i] = replace(r, label="NO_DATA", gating=False, requests_needed=None, reason=why)
        return out

    def evaluate(self, ev: Evidence, now: datetime) -> CanaryVerdict:
        """The verdict as of `now` over the strata closed so far (call `ev.close(now)` first). The evidence only
        changes when a stratum closes or the weight moves, so the classification is reused until then."""
        key = (ev.strata_closed, ev.segment, ev.weight)
        cached = ev.verdict_cache
        if cached is None or cached[0] != key:
            cached = ev.verdict_cache = (key, self._fields(ev))
        fields = cached[1]
        return CanaryVerdict(
            ts=now,
            window_start=ev.window_start or now,
            window_end=ev.window_end or now,
            **fields,
        )

    def _fields(self, ev: Evidence) -> dict[str, Any]:
        cfg = self.config
        results, alpha = self.results(ev)
        names = [what(t) for t in ev.tests]
        srm_threshold = math.log(1.0 / cfg.alpha_srm)
        srm = ev.srm.max_log_e >= srm_threshold
        o = score(ev.tests, results, names, cfg, canary_n=ev.canary_n, srm=srm, weight=ev.weight)
        next_weight = cfg.next_weight(ev.weight)
        base, can = ev.step_data()
        step_requests = base.requests + can.requests
        observed = can.requests / step_requests if step_requests > 0 else None
        return {
            "deployment": ev.deployment,
            "baseline_version": ev.baseline,
            "canary_version": ev.canary,
            "judge": self.name,
            "result": o.result,
            "reason": self._reason(ev, o, results, names, alpha, next_weight, srm),
            "metrics": [self._metric(t, r) for t, r in zip(ev.tests, results, strict=True)],
            "baseline_n": ev.baseline_n,
            "canary_n": ev.canary_n,
            "canary_weight": ev.weight,
            "next_weight": next_weight,
            "pass_evidence": None if o.pass_log_e is None else _e(o.pass_log_e),
            "pass_threshold": 1.0 / alpha,
            "srm_detected": srm,
            "observed_share": observed,
            "srm_p_value": min(1.0, math.exp(-ev.srm.max_log_e)),
            "requests_needed": o.requests_needed,
        }

    def _metric(self, t: Test, r: Result) -> MetricVerdict:
        cfg = self.config
        effect = None
        if r.baseline_value is not None and r.canary_value is not None and r.baseline_value > 0:
            effect = r.canary_value / r.baseline_value - 1.0
        return MetricVerdict(
            metric=t.spec.name,
            result={"HIGH": "fail", "LOW": "fail", "PASS": "pass"}.get(r.label, "inconclusive"),  # type: ignore[arg-type]
            label=r.label,
            direction=t.side if t.margin is not None else t.spec.direction,
            critical=t.spec.critical,
            gating=r.gating,
            quantile=t.quantile,
            margin=t.tolerated,
            tolerated=t.tolerated,
            forbidden=t.forbidden,
            effect_size=effect,
            ratio=None if r.ratio is None or math.isinf(r.ratio) else r.ratio,
            statistic=r.fail_log_e,
            p_value=min(1.0, math.exp(-max(r.fail_log_e, 0.0)) * cfg.tests),
            pass_e_value=_e(r.pass_log_e),
            baseline_n=r.baseline_n,
            canary_n=r.canary_n,
            baseline_value=r.baseline_value,
            canary_value=r.canary_value,
            requests_needed=r.requests_needed,
            reason=r.reason,
        )

    def _reason(
        self,
        ev: Evidence,
        o: Overall,
        results: list[Result],
        names: list[str],
        alpha: float,
        next_weight: float,
        srm: bool,
    ) -> str:
        cfg = self.config
        by_name = dict(zip(names, results, strict=True))
        step = f"the step to {next_weight:.0%}"
        if o.result == "fail":
            if o.critical_fail:
                head = "critical metric failed"
            elif cfg.fail_score < 100:
                head = f"score {o.score:.0f} < {cfg.fail_score:.0f}"
            else:
                head = "failed"
            return f"{head}: " + " | ".join(by_name[n].reason for n in o.failing)
        if srm:
            base, can = ev.step_data()
            n = base.requests + can.requests
            share = f"{can.requests / n:.2%} of {n:,.0f} requests at this step" if n else "no request yet"
            got = ev.srm.observed / ev.srm.expected if ev.srm.expected else 0.0
            return (
                f"sample-ratio mismatch: the canary got {ev.srm.observed:,.0f} of {ev.srm.requests:,.0f} requests "
                f"where its weights called for {ev.srm.expected:,.0f} ({got:.0%}); {share} at weight {ev.weight:.0%} "
                f"(e-value {_e(ev.srm.max_log_e):.3g} ≥ {1 / cfg.alpha_srm:.3g}): traffic is not following the weights"
            )
        waived = [n for n, r in by_name.items() if r.label == "NO_DATA" and not r.gating]
        note = f"; NO_DATA, not gating: {', '.join(waived)}" if waived else ""
        if o.result == "pass":
            budget = "no evidence needed" if alpha >= 1 else f"risk budget α = {alpha:.3g}"
            return f"every gating metric rules out its forbidden regression for {step} ({budget}){note}"
        if ev.canary_n < cfg.min_canary_n:
            head = f"canary sample {ev.canary_n:,} < {cfg.min_canary_n:,}"
        elif not o.blocking:
            head = "no metric has data yet"
        else:
            shown = ", ".join(o.blocking[:4]) + (f" and {len(o.blocking) - 4} more" if len(o.blocking) > 4 else "")
            head = f"not yet ruled out for {step} (α = {alpha:.3g}): {shown}"
        more = f"; ~{o.requests_needed:,} more requests to decide" if o.requests_needed else ""
        return f"{head}{more}{note}"
