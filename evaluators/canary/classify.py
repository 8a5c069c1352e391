"""The classifier: per metric (and quantile, and side) the running tests and their label with a reason.

Labels, as in Kayenta: HIGH / LOW (failed: the canary is worse than tolerated, with evidence past the Bonferroni
share of alpha_fail), PASS (the forbidden regression is ruled out at the next step's risk budget), NO_DATA (no data,
or for a non-critical metric too few events to ever rule it out yet: it then does not gate), INCONCLUSIVE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ddsketch.mapping import LogarithmicMapping

from .arms import ArmData, Hist
from .config import JudgeConfig, MetricSpec, QuantileMargin, Side
from .stats import EProcess, exceedance_table, floor_log_e, kl_events

Label = Literal["PASS", "HIGH", "LOW", "NO_DATA", "INCONCLUSIVE"]

#: Weight of the floor route in a rate's pass evidence (the ratio route gets the rest): an average of e-values is one.
FLOOR_SHARE = 0.2
#: Events of shrinkage of a rate's pass alternative towards ρ = 1.
RATE_PASS_PSEUDO = 20.0


@dataclass(frozen=True)
class Result:
    """One test's state as of a verdict."""

    label: Label
    gating: bool  # whether it must PASS for the canary to pass
    fail_log_e: float
    pass_log_e: float
    pass_log_threshold: float
    ratio: float | None  # stratified (Mantel–Haenszel) ratio of the bad side: canary ÷ baseline
    baseline_value: float | None
    canary_value: float | None
    baseline_n: int
    canary_n: int
    events: float
    requests_needed: int | None
    reason: str


class Test:
    """One judged quantity: a rate, or one side of one quantile of a sketched distribution.

    The pass evidence that counts is the largest the pass e-process has reached (`pass_max`): by Ville's inequality
    the chance that it *ever* reaches 1/α under the forbidden regression is at most α, so a metric that has ruled the
    regression out stays ruled out, and a pass needs every gating metric to have crossed, not all at the same look.
    """

    spec: MetricSpec
    side: Side
    margin: QuantileMargin | None
    fail: EProcess
    passing: EProcess
    pass_max: float = 0.0

    def update(self, base: ArmData, can: ArmData) -> None:
        self._update(base, can)
        self.pass_max = max(self.pass_max, self.pass_log())

    def _update(self, base: ArmData, can: ArmData) -> None:
        raise NotImplementedError

    def restart(self, weight: float) -> None:
        self.fail.restart(weight)

    # -- what a verdict reports, over the data of the current step (the same minutes for both arms)
    def values(self, base: ArmData, can: ArmData, mapping: LogarithmicMapping) -> tuple[float | None, float | None]:
        raise NotImplementedError

    def trials(self, data: ArmData) -> float:
        raise NotImplementedError

    @property
    def tolerated(self) -> float:
        return self.margin.tolerated if self.margin else self.spec.tolerated

    @property
    def forbidden(self) -> float:
        return self.margin.forbidden if self.margin else self.spec.forbidden

    @property
    def quantile(self) -> float | None:
        return None if self.margin is None else (self.margin.q if self.side == "increase" else 1.0 - self.margin.q)

    def pass_log(self) -> float:
        return self.passing.value_log

    def healthy_info(self, share: float) -> float:
        """Expected pass evidence per event for a canary equal to the baseline (what NO_DATA and the requests
        needed are measured against)."""
        raise NotImplementedError


class RateTest(Test):
    """A rate: bad events out of the metric's own trials (its denominator), ratio canary ÷ baseline."""

    def __init__(self, spec: MetricSpec, first_weight: float) -> None:
        self.spec, self.side, self.margin = spec, "increase", None
        null_fail, null_pass = 1.0 + spec.tolerated, 1.0 + spec.forbidden
        self.fail = EProcess("fail", null_fail, default=2.0 * null_fail, weights=[first_weight])
        # a healthy canary has ρ = 1: the pass alternative starts there and moves only with plenty of events, since
        # a plug-in that chases a rare metric's noise towards the forbidden ratio gains almost nothing per event
        self.passing = EProcess("pass", null_pass, default=1.0, pseudo=RATE_PASS_PSEUDO)
        self.canary_k = 0.0
        self.canary_n = 0.0

    def _update(self, base: ArmData, can: ArmData) -> None:
        n_b, k_b = base.rate(self.spec.source)
        n_c, k_c = can.rate(self.spec.source)
        self.fail.update(k_c, n_c, k_b, n_b)
        self.passing.update(k_c, n_c, k_b, n_b)
        self.canary_k += k_c
        self.canary_n += n_c

    def trials(self, data: ArmData) -> float:
        return data.rate(self.spec.source)[0]

    def values(self, base: ArmData, can: ArmData, mapping: LogarithmicMapping) -> tuple[float | None, float | None]:
        (n_b, k_b), (n_c, k_c) = base.rate(self.spec.source), can.rate(self.spec.source)
        return (k_b / n_b if n_b else None), (k_c / n_c if n_c else None)

    def pass_log(self) -> float:
        ratio = self.passing.value_log
        if self.spec.floor <= 0:
            return ratio
        floor = floor_log_e(self.canary_k, self.canary_n, self.spec.floor)
        m = max(ratio, floor)
        return m + math.log((1 - FLOOR_SHARE) * math.exp(ratio - m) + FLOOR_SHARE * math.exp(floor - m))

    def healthy_info(self, share: float) -> float:
        return kl_events(share, 0.0, math.log(self.passing.null))


class QuantileTest(Test):
    """One side of one quantile: requests beyond the pooled sample's q-quantile bucket, the canary's values divided
    by (1 + tolerated) for the fail test and by (1 + forbidden) for the pass test (whole buckets, rounded so each
    test stays valid: up for the fail test, down for the pass test)."""

    def __init__(self, spec: MetricSpec, margin: QuantileMargin, side: Side, first_weight: float, accuracy: float):
        self.spec, self.margin, self.side = spec, margin, side
        gamma = 1.0 + 2.0 * accuracy / (1.0 - accuracy)
        self.fail_shift = math.ceil(math.log1p(margin.tolerated) / math.log(gamma) - 1e-9)
        self.pass_shift = math.floor(math.log1p(margin.forbidden) / math.log(gamma) + 1e-9)
        self.fail = EProcess("fail", 1.0, default=2.0, weights=[first_weight])
        self.passing = EProcess("pass", 1.0, default=0.7)

    def _update(self, base: ArmData, can: ArmData) -> None:
        hb, hc = Hist.aligned(base.hist(self.spec.source), can.hist(self.spec.source))
        if hb.sum() <= 0 or hc.sum() <= 0:
            return
        lower, q = self.side == "decrease", self.margin.q
        self.fail.update(*exceedance_table(hb, hc, q, self.fail_shift, lower=lower))
        self.passing.update(*exceedance_table(hb, hc, q, self.pass_shift, lower=lower))

    def trials(self, data: ArmData) -> float:
        return data.hist(self.spec.source).total

    def values(self, base: ArmData, can: ArmData, mapping: LogarithmicMapping) -> tuple[float | None, float | None]:
        q = self.quantile or 0.5
        return base.hist(self.spec.source).quantile(q, mapping), can.hist(self.spec.source).quantile(q, mapping)

    def healthy_info(self, share: float) -> float:
        # a canary equal to the baseline has, beyond the threshold of the scaled pass test, a share below the
        # baseline's: its stratified estimate (or the default before data) is what the pass test can earn per event
        rho = self.passing.alternative(self.passing.total)
        return kl_events(share, math.log(rho), 0.0)


def build_tests(config: JudgeConfig) -> list[Test]:
    first, _ = config.restart_weights()
    tests: list[Test] = []
    for spec in config.metrics:
        if spec.kind == "rate":
            tests.append(RateTest(spec, first))
            continue
        for margin in spec.quantiles:
            for side in spec.sides:
                tests.append(QuantileTest(spec, margin, side, first, config.sketch_accuracy))
    return tests


def classify(
    test: Test,
    config: JudgeConfig,
    *,
    pending_weight: float,
    pass_alpha: float,
    share: float,
    events_per_request: float,
    step_base: ArmData,
    step_can: ArmData,
    mapping: LogarithmicMapping,
) -> Result:
    """Label one test. `share`: the canary's share of the metric's trials at the current step; `events_per_request`:
    the test's events per request so far (both feed the requests a decision still needs)."""
    spec = test.spec
    fail_log = test.fail.mixture_log(pending_weight)
    pass_log = test.pass_max
    threshold = math.log(1.0 / pass_alpha)
    b_val, c_val = test.values(step_base, step_can, mapping)
    n_b, n_c = int(test.trials(step_base)), int(test.trials(step_can))
    ratio = test.fail.total.raw
    events = test.fail.events
    info = test.healthy_info(share)
    # NO_DATA: no trials at all, or (non-critical) fewer events than a canary equal to the baseline would need
    no_trials = test.fail.trials_c <= 0 or test.fail.trials_b <= 0
    need_events = config.sparse_factor * threshold / info if info > 0 and threshold > 0 else 0.0
    too_few = no_trials or (threshold > 0 and events < need_events)
    needed: int | None = None
    label: Label
    if fail_log >= config.fail_log_threshold:
        label = "HIGH" if test.side == "increase" else "LOW"
    elif threshold <= 0 or pass_log >= threshold:
        label = "PASS"
    else:
        label = "NO_DATA" if too_few else "INCONCLUSIVE"
        if info > 0 and events_per_request > 0:
            needed = math.ceil(max(threshold - pass_log, 0.0) / (info * events_per_request))
    gating = spec.critical or label not in ("NO_DATA",)
    return Result(
        label=label,
        gating=gating,
        fail_log_e=fail_log,
        pass_log_e=pass_log,
        pass_log_threshold=threshold,
        ratio=ratio,
        baseline_value=b_val,
        canary_value=c_val,
        baseline_n=n_b,
        canary_n=n_c,
        events=events,
        requests_needed=needed,
        reason=_reason(test, config, label, fail_log, pass_log, threshold, ratio, b_val, c_val, n_b, n_c, events,
                       need_events, needed),
    )  # fmt: skip


def _pct(x: float) -> str:
    return f"{100 * x:+.0f}%"


#: Units of the sketched distributions, and what each rate counts over, in the reasons.
UNITS = {"ttft": " ms", "tpot": " ms", "e2e": " ms", "output_tokens": " tokens"}
TRIALS = {
    "errors": "finished requests",
    "toxicity": "responses",
    "pii_leak": "responses",
    "injection_success": "flagged prompts",
    "hallucination": "responses with context",
    "output_tokens": "responses",
}


def _num(x: float | None, rate: bool, unit: str = "") -> str:
    if x is None:
        return "—"
    return f"{100 * x:.3g}%" if rate else f"{x:,.4g}{unit}"


def _e(log_e: float) -> str:
    return f"{math.exp(min(log_e, 700.0)):.3g}"


def what(test: Test) -> str:
    """The judged quantity in words: 'error_rate', 'ttft p99', 'drift p5 (lower tail)'."""
    if test.margin is None:
        return test.spec.name
    q = test.quantile or 0.5
    return f"{test.spec.name} p{100 * q:g}" + (" (lower)" if test.side == "decrease" else "")


def _reason(
    test: Test,
    config: JudgeConfig,
    label: Label,
    fail_log: float,
    pass_log: float,
    threshold: float,
    ratio: float | None,
    b_val: float | None,
    c_val: float | None,
    n_b: int,
    n_c: int,
    events: float,
    need_events: float,
    needed: int | None,
) -> str:
    rate = test.margin is None
    name = what(test)
    sign = "−" if test.side == "decrease" else "+"
    if rate:
        margins = f"tolerated ×{1 + test.tolerated:g}, forbidden ×{1 + test.forbidden:g}"
    else:
        margins = f"tolerated {sign}{100 * test.tolerated:g}%, forbidden {sign}{100 * test.forbidden:g}%"
    change = ""
    if b_val is not None and c_val is not None and b_val > 0:
        change = f" ×{c_val / b_val:.2g}" if rate else f" {_pct(c_val / b_val - 1)}"
    unit = UNITS.get(test.spec.source, "")
    values = (
        f"{change}: canary {_num(c_val, rate, unit)} vs baseline {_num(b_val, rate, unit)} on {n_c:,} canary / "
        f"{n_b:,} baseline {TRIALS.get(test.spec.source, 'requests')} at this step"
    )
    ratio_s = ""
    if rate and ratio is not None and not math.isinf(ratio):
        ratio_s = f" (×{ratio:.2f} in the same minutes over the rollout, {events:,.0f} events)"
    if label in ("HIGH", "LOW"):
        verdict = f"fail e-value {_e(fail_log)} ≥ {_e(config.fail_log_threshold)}"
    elif label == "PASS":
        verdict = (
            "no evidence needed for this step" if threshold <= 0 else f"pass e-value {_e(pass_log)} ≥ {_e(threshold)}"
        )
    elif label == "NO_DATA":
        verdict = (
            "no data" if events == 0 and n_c == 0 else f"too little data: {events:,.0f} events of ~{need_events:,.0f}"
        ) + (" (critical: blocks promotion)" if test.spec.critical else " (not critical: does not block)")
    else:
        verdict = f"pass e-value {_e(pass_log)} < {_e(threshold)}"
    more = f"; ~{needed:,} more requests to decide" if needed else ""
    return f"{label}: {name}{values}{ratio_s}; {margins}; {verdict}{more}"
