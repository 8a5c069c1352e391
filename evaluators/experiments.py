"""A/B experiment analysis: per-arm summaries, fixed-horizon tests, sample-size guidance (pure: the rows come
from `llmwatch.db.queries.experiment_rows`).

Experiments differ from canaries: arms are assigned by a stable hash of the user, run to a planned size, and
are compared on what users say (thumbs-up rate, feedback score) as well as on quality and latency. The tests
here are the classical fixed-horizon ones (two-proportion z-test, Welch's t-test), valid when read once at
the planned sample size; the report says how large that is (`sample_size_two_proportions`) and where the
experiment stands. Each arm is compared with the control; the significance level is split over those
comparisons (Bonferroni), so more arms do not mean more false winners.

The statistics are pure functions of counts, sums and variances, so each has a test checkable by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats


# ------------------------------------------------------------------------------------------------ tests
@dataclass(frozen=True)
class Comparison:
    """Treatment minus control, with a (1 − α) confidence interval and a two-sided p-value."""

    metric: str
    control: float | None
    treatment: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    statistic: float | None
    p_value: float | None
    significant: bool
    n_control: int
    n_treatment: int


def _none(metric: str, control: float | None, treatment: float | None, n_c: int, n_t: int) -> Comparison:
    return Comparison(metric, control, treatment, None, None, None, None, None, False, n_c, n_t)


def two_proportions(metric: str, k_c: int, n_c: int, k_t: int, n_t: int, alpha: float) -> Comparison:
    """Two-proportion z-test (pooled variance for the test, unpooled for the interval)."""
    if n_c <= 0 or n_t <= 0:
        return _none(metric, k_c / n_c if n_c else None, k_t / n_t if n_t else None, n_c, n_t)
    p_c, p_t = k_c / n_c, k_t / n_t
    diff = p_t - p_c
    pooled = (k_c + k_t) / (n_c + n_t)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    z = diff / se0 if se0 > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z))) if se0 > 0 else 1.0
    se = math.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
    half = float(stats.norm.ppf(1 - alpha / 2)) * se
    return Comparison(metric, p_c, p_t, diff, diff - half, diff + half, z, p, p < alpha, n_c, n_t)


def welch(
    metric: str, mean_c: float, var_c: float, n_c: int, mean_t: float, var_t: float, n_t: int, alpha: float
) -> Comparison:
    """Welch's t-test on means (unequal variances, Welch–Satterthwaite degrees of freedom)."""
    if n_c < 2 or n_t < 2:
        return _none(metric, mean_c if n_c else None, mean_t if n_t else None, n_c, n_t)
    a, b = var_c / n_c, var_t / n_t
    se = math.sqrt(a + b)
    diff = mean_t - mean_c
    if se == 0:
        return Comparison(metric, mean_c, mean_t, diff, diff, diff, None, None, False, n_c, n_t)
    df = (a + b) ** 2 / (a**2 / (n_c - 1) + b**2 / (n_t - 1))
    t = diff / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return Comparison(metric, mean_c, mean_t, diff, diff - half, diff + half, t, p, p < alpha, n_c, n_t)


def sample_size_two_proportions(p_control: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per arm for a two-sided two-proportion test to detect p_control → p_control + mde.

    n = (z_{1−α/2}·√(2·p̄(1−p̄)) + z_{power}·√(p₁(1−p₁) + p₂(1−p₂)))² / mde², rounded up (p̄ = (p₁+p₂)/2).
    """
    if not 0 < mde < 1 or not 0 <= p_control <= 1:
        raise ValueError("need 0 < mde < 1 and 0 ≤ p_control ≤ 1")
    p1 = p_control
    p2 = p_control + mde if p_control + mde <= 1 else p_control - mde
    pbar = (p1 + p2) / 2
    za, zb = float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(power))
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / mde**2
    return math.ceil(n - 1e-9)


# ------------------------------------------------------------------------------------------------- arms
@dataclass
class ArmSummary:
    """What ClickHouse knows about one arm (model_version) of an experiment."""

    arm: str
    requests: int = 0
    finished: int = 0  # ok or error: the error rate's denominator (cancelled requests are the client's doing)
    errors: int = 0
    ttft_n: int = 0
    ttft_mean: float = 0.0
    ttft_var: float = 0.0
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    thumbs: int = 0
    thumbs_up: int = 0
    score_n: int = 0
    score_mean: float = 0.0
    score_var: float = 0.0
    scored: int = 0
    toxic: int = 0
    pii_n: int = 0
    pii_leaks: int = 0
    halluc_n: int = 0
    hallucinated: int = 0

    @property
    def thumbs_up_rate(self) -> float | None:
        return self.thumbs_up / self.thumbs if self.thumbs else None


def compare(control: ArmSummary, t: ArmSummary, alpha: float) -> list[Comparison]:
    """Every metric of arm `t` against the control, at level `alpha` (already split over the arms)."""
    c = control
    return [
        two_proportions("thumbs_up_rate", c.thumbs_up, c.thumbs, t.thumbs_up, t.thumbs, alpha),
        welch("feedback_score", c.score_mean, c.score_var, c.score_n, t.score_mean, t.score_var, t.score_n, alpha),
        two_proportions("error_rate", c.errors, c.finished, t.errors, t.finished, alpha),
        welch("ttft_mean_ms", c.ttft_mean, c.ttft_var, c.ttft_n, t.ttft_mean, t.ttft_var, t.ttft_n, alpha),
        two_proportions("toxicity_rate", c.toxic, c.scored, t.toxic, t.scored, alpha),
        two_proportions("pii_leak_rate", c.pii_leaks, c.pii_n, t.pii_leaks, t.pii_n, alpha),
        two_proportions("hallucination_rate", c.hallucinated, c.halluc_n, t.hallucinated, t.halluc_n, alpha),
    ]


def _f(x: Any) -> float:
    return 0.0 if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def arms_from_rows(
    events: Iterable[Sequence[Any]], feedback: Iterable[Sequence[Any]], scores: Iterable[Sequence[Any]]
) -> dict[str, ArmSummary]:
    """Per-arm summaries from the three reads of `llmwatch.db.queries.experiment_rows` (counted with the one
    definition of each metric, evaluators/metrics.py)."""
    arms: dict[str, ArmSummary] = {}
    for mv, finished, err, tn, tmean, tvar, p50, p95, n in events:
        arms[mv] = ArmSummary(
            mv,
            requests=int(n),
            finished=int(finished),
            errors=int(err),
            ttft_n=int(tn),
            ttft_mean=_f(tmean),
            ttft_var=_f(tvar),
            ttft_p50=None if tn == 0 else _f(p50),
            ttft_p95=None if tn == 0 else _f(p95),
        )
    for mv, th, up, sn, smean, svar in feedback:
        a = arms.setdefault(mv, ArmSummary(mv))
        a.thumbs, a.thumbs_up, a.score_n, a.score_mean, a.score_var = int(th), int(up), int(sn), _f(smean), _f(svar)
    for mv, tox_n, tox, pii_n, pii, hal_n, hal in scores:
        a = arms.setdefault(mv, ArmSummary(mv))
        a.scored, a.toxic, a.pii_n, a.pii_leaks, a.halluc_n, a.hallucinated = (
            int(tox_n),
            int(tox),
            int(pii_n),
            int(pii),
            int(hal_n),
            int(hal),
        )
    return arms


# ---------------------------------------------------------------------------------------------- report
def analyse(
    arms: dict[str, ArmSummary],
    *,
    control: str | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    mde: float = 0.02,
) -> dict[str, Any]:
    """The report's content: control, per-arm comparisons at α/(arms−1), sample-size guidance."""
    if not arms:
        raise ValueError("no arms")
    ctrl = control or max(arms.values(), key=lambda a: (a.requests, a.arm)).arm
    if ctrl not in arms:
        raise ValueError(f"control arm {ctrl!r} is not in the experiment ({', '.join(sorted(arms))})")
    others = [a for name, a in sorted(arms.items()) if name != ctrl]
    level = alpha / max(1, len(others))
    base_rate = arms[ctrl].thumbs_up_rate
    needed = sample_size_two_proportions(base_rate if base_rate is not None else 0.5, mde, level, power)
    comparisons = {a.arm: [asdict(c) for c in compare(arms[ctrl], a, level)] for a in others}
    fewest = min((a.thumbs for a in arms.values()), default=0)
    return {
        "control": ctrl,
        "alpha": alpha,
        "alpha_per_comparison": level,
        "power": power,
        "mde": mde,
        "arms": {name: asdict(a) | {"thumbs_up_rate": a.thumbs_up_rate} for name, a in sorted(arms.items())},
        "comparisons": comparisons,
        "sample_size": {
            "thumbs_per_arm_needed": needed,
            "thumbs_in_smallest_arm": fewest,
            "complete": fewest >= needed,
            "assumed_control_rate": base_rate if base_rate is not None else 0.5,
        },
    }


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.2f}%" if pct else f"{x:.4g}"


_PCT = {"thumbs_up_rate", "error_rate", "toxicity_rate", "pii_leak_rate", "hallucination_rate"}


def render_report(name: str, arms: dict[str, ArmSummary], **kw: Any) -> tuple[str, dict[str, Any]]:
    data = analyse(arms, **kw)
    data["experiment"] = name
    lines = [f"experiment {name}: {len(arms)} arms, control {data['control']}", ""]
    lines.append(
        f"{'arm':20} {'requests':>9} {'errors':>8} {'ttft p50':>9} {'ttft p95':>9} {'thumbs':>7} {'up rate':>8} "
        f"{'score':>7}"
    )
    for a in (arms[n] for n in sorted(arms)):
        lines.append(
            f"{a.arm:20} {a.requests:>9} {_fmt(a.errors / a.finished if a.finished else None, True):>8} "
            f"{_fmt(a.ttft_p50):>9} {_fmt(a.ttft_p95):>9} {a.thumbs:>7} {_fmt(a.thumbs_up_rate, True):>8} "
            f"{_fmt(a.score_mean if a.score_n else None):>7}"
        )
    level = data["alpha_per_comparison"]
    for arm, comps in data["comparisons"].items():
        lines += ["", f"{arm} vs {data['control']} (two-sided, α = {level:.3g} per comparison):"]
        for c in comps:
            pct = c["metric"] in _PCT
            if c["diff"] is None:
                lines.append(f"  {c['metric']:20} not enough data")
                continue
            verdict = "SIGNIFICANT" if c["significant"] else "not significant"
            lines.append(
                f"  {c['metric']:20} {_fmt(c['control'], pct)} → {_fmt(c['treatment'], pct)}  "
                f"diff {_fmt(c['diff'], pct)} [{_fmt(c['ci_low'], pct)}, {_fmt(c['ci_high'], pct)}]  "
                f"p={_fmt(c['p_value'])}  {verdict}"
            )
    s = data["sample_size"]
    lines += [
        "",
        f"sample size: {s['thumbs_per_arm_needed']} thumbs per arm detect a {100 * data['mde']:.1f}-point change of "
        f"the thumbs-up rate ({_fmt(s['assumed_control_rate'], True)}) with power {data['power']:.0%}; "
        f"the smallest arm has {s['thumbs_in_smallest_arm']}"
        + (" (complete)." if s["complete"] else " (keep collecting; read the result once, at that size)."),
    ]
    return "\n".join(lines), data
