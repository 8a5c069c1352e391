"""What the judge is sure to stop, per metric, per step and traffic level (the docs' table, `llmwatch rollout status`).

Two numbers per metric and step:
- **blocked**: the forbidden regression (the policy). A canary with it advances past the step with probability at
  most the step's risk budget α = min(1, alpha_pass / next weight): a guarantee at any traffic (Ville's inequality
  on the pass e-process). Where α = 1 (the first, small steps) nothing is demanded: the budget allows the exposure.
- **rolled back**: the smallest regression the fail test rolls back with at least 90 % probability within the
  step's time at the given traffic, from the e-process's expected growth and spread (a normal approximation of the
  log e-value at the step's end; crossings before the end only add to it). Latency assumes a log-normal with the
  given σ, where a rise by r moves the share beyond the q-quantile from 1 − q to 1 − Φ(z_q − ln r / σ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm

from .config import JudgeConfig, MetricSpec, QuantileMargin
from .stats import log_pi

Z90 = 1.2815515655446004  # one-sided 90 %


@dataclass(frozen=True)
class Traffic:
    """What the detection depends on: requests per second, each rate's base value and the share of requests where
    it is measured, and the latency's log-normal shape."""

    rps: float = 100.0
    base_rates: dict[str, float] | None = None
    measured_share: dict[str, float] | None = None
    latency_sigma: float = 0.5

    def rate(self, source: str) -> float:
        defaults = {
            "errors": 0.01,
            "toxicity": 0.002,
            "pii_leak": 0.002,
            "injection_success": 0.1,
            "hallucination": 0.05,
        }
        return (self.base_rates or {}).get(source, defaults.get(source, 0.01))

    def share(self, source: str) -> float:
        defaults = {"injection_success": 0.02, "hallucination": 0.3}
        return (self.measured_share or {}).get(source, defaults.get(source, 1.0))


@dataclass(frozen=True)
class Guarantee:
    metric: str  # with its quantile: "ttft p99"
    weight: float  # the step's canary weight
    next_weight: float
    alpha: float  # the risk budget's level for the step to next_weight
    blocked: str  # the forbidden regression, or "—" where the budget demands no evidence
    rolled_back: str  # smallest regression rolled back (≥ 90 %) within the step, or "—"
    ratio: float | None  # the same as a factor (×2.1, 1.18 for +18 %), None when out of reach


def _moments(share: float, rho: float, rho0: float) -> tuple[float, float]:
    """Mean and variance of one event's log LR (alternative at the truth ρ against ρ₀) at canary share `share`."""
    p1, q1 = log_pi(math.log(rho), share)
    p0, q0 = log_pi(math.log(rho0), share)
    a, b = p1 - p0, q1 - q0
    pi = math.exp(p1)
    mean = pi * a + (1 - pi) * b
    return mean, pi * (1 - pi) * (a - b) ** 2


def _caught(events_per_s: float, seconds: float, share: float, rho: float, rho0: float, threshold: float) -> bool:
    mean, var = _moments(share, rho, rho0)
    n = events_per_s * seconds
    return n * mean - Z90 * math.sqrt(max(n * var, 0.0)) >= threshold


def _search(ok: callable, hi: float = 100.0) -> float | None:  # type: ignore[valid-type]
    """Smallest factor f in (1, hi] with ok(f) (monotone), by bisection on log f."""
    if not ok(hi):
        return None
    lo_l, hi_l = 0.0, math.log(hi)
    for _ in range(40):
        mid = 0.5 * (lo_l + hi_l)
        if ok(math.exp(mid)):
            hi_l = mid
        else:
            lo_l = mid
    return math.exp(hi_l)


def _rate(spec: MetricSpec, cfg: JudgeConfig, w: float, seconds: float, traffic: Traffic, thr: float) -> float | None:
    p = traffic.rate(spec.source)
    per_s = traffic.rps * traffic.share(spec.source) * p
    rho0 = 1.0 + spec.tolerated

    def ok(rho: float) -> bool:
        return rho > rho0 and _caught(per_s * ((1 - w) + rho * w), seconds, w, rho, rho0, thr)

    return _search(ok)


def _quantile(margin: QuantileMargin, w: float, seconds: float, traffic: Traffic, thr: float) -> float | None:
    sigma, q = traffic.latency_sigma, margin.q
    z = float(norm.ppf(q))

    def ratio(r: float) -> float:  # exceedance share of the canary, values divided by (1 + tolerated), over 1 − q
        return float(norm.sf(z - math.log(r / (1 + margin.tolerated)) / sigma)) / (1 - q)

    def ok(r: float) -> bool:
        rho = ratio(r)
        events = traffic.rps * (1 - q) * ((1 - w) + rho * w)
        return rho > 1.0 and _caught(events, seconds, w, rho, 1.0, thr)

    return _search(ok, hi=20.0)


def guarantees(config: JudgeConfig, traffic: Traffic, *, step_s: float) -> list[Guarantee]:
    """Per judged step (weights below 1) and metric: the blocked and the rolled-back regression, at `traffic` with
    `step_s` seconds per step."""
    start_copy, _ = config.restart_weights()
    thr = config.fail_log_threshold + math.log(1.0 / start_copy)
    out: list[Guarantee] = []
    for w in [s for s in config.steps if s < 1.0]:
        nxt = config.next_weight(w)
        alpha = config.pass_alpha(nxt)
        for spec in config.metrics:
            if spec.kind == "rate":
                f = _rate(spec, config, w, step_s, traffic, thr)
                floor = f" (and ≥ {100 * spec.floor:g}%)" if spec.floor else ""
                blocked = "—" if alpha >= 1 else f"×{1 + spec.forbidden:g}{floor}"
                out.append(Guarantee(spec.name, w, nxt, alpha, blocked, "—" if f is None else f"×{f:.2g}", f))
                continue
            for m in spec.quantiles:
                f = _quantile(m, w, step_s, traffic, thr)
                sign = "+" if spec.direction != "decrease" else "−"
                out.append(
                    Guarantee(
                        f"{spec.name} {m.label}", w, nxt, alpha,
                        "—" if alpha >= 1 else f"{sign}{100 * m.forbidden:g}%",
                        "—" if f is None else f"{sign}{100 * (f - 1):.0f}%", f,
                    )
                )  # fmt: skip
    return out


def table(rows: list[Guarantee], *, rps: float, step_s: float) -> str:
    """Markdown: one row per metric, one column pair per step."""
    steps = sorted({(g.weight, g.next_weight, g.alpha) for g in rows})
    head = "| metric | " + " | ".join(f"{100 * w:g}% → {100 * n:g}% (α {a:.2g})" for w, n, a in steps) + " |"
    lines = [head, "| --- |" + " --- |" * len(steps)]
    metrics = list(dict.fromkeys(g.metric for g in rows))
    for name in metrics:
        cells = []
        for w, _, _ in steps:
            g = next(x for x in rows if x.metric == name and x.weight == w)
            cells.append(f"{g.blocked} / {g.rolled_back}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Cells: blocked (the forbidden regression cannot pass the step with probability above α) / rolled back "
        f"(with ≥ 90 % probability within {step_s / 60:g} minutes at that step) at {rps:g} requests/s."
    )
    return "\n".join(lines)
