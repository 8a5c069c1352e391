"""The scorer: per-test labels → one overall result, as Kayenta's: a critical failure decides; otherwise the weighted
share of metrics with data that did not fail must reach `fail_score` (100: every metric gates). Pass: nothing
failed, no sample-ratio mismatch, enough canary requests, and every gating test passed at the step's risk budget."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .classify import Result, Test
from .config import JudgeConfig


@dataclass(frozen=True)
class Overall:
    result: Literal["pass", "fail", "inconclusive"]
    critical_fail: bool
    score: float
    failing: list[str]
    blocking: list[str]  # gating tests not passed yet (words, as `classify.what` writes them)
    pass_log_e: float | None  # the smallest pass evidence among the gating tests
    requests_needed: int | None


def score(
    tests: list[Test],
    results: list[Result],
    names: list[str],
    config: JudgeConfig,
    *,
    canary_n: int,
    srm: bool,
    weight: float,
) -> Overall:
    """`names`: each test's quantity in words (for the reasons)."""
    failed: dict[str, bool] = {}
    has_data: dict[str, bool] = {}
    critical_fail = False
    for t, r in zip(tests, results, strict=True):
        bad = r.label in ("HIGH", "LOW")
        failed[t.spec.name] = failed.get(t.spec.name, False) or bad
        has_data[t.spec.name] = has_data.get(t.spec.name, False) or r.label != "NO_DATA" or bad
        if bad:
            critical_fail = critical_fail or t.spec.critical
    failing = [name for r, name in zip(results, names, strict=True) if r.label in ("HIGH", "LOW")]
    weights = {t.spec.name: t.spec.weight for t in tests}
    w_data = sum(weights[m] for m, d in has_data.items() if d)
    w_ok = sum(weights[m] for m, d in has_data.items() if d and not failed[m])
    pct = 100.0 * w_ok / w_data if w_data > 0 else 100.0
    gating = [(r, name) for r, name in zip(results, names, strict=True) if r.gating]
    blocking = [name for r, name in gating if r.label != "PASS"]
    pass_log = min((r.pass_log_e for r, _ in gating), default=None)
    needs = [r.requests_needed for r, _ in gating if r.label != "PASS" and r.requests_needed is not None]
    short = max(config.min_canary_n - canary_n, 0)
    needed = max([*needs, math.ceil(short / max(weight, 1e-9)) if short else 0], default=0) or None
    if critical_fail or pct < config.fail_score:
        result: Literal["pass", "fail", "inconclusive"] = "fail"
    elif srm or blocking or short or w_data <= 0:
        result = "inconclusive"
    else:
        result = "pass"
    return Overall(result, critical_fail, pct, failing, blocking, pass_log, needed if result != "pass" else None)
