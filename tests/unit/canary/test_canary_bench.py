"""`llmwatch bench canary`: its scenario names and JSON keys (a contract), the Kayenta-style classifier by hand,
the summary rules, the guarantees table, and the command end to end on a small run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from llmwatch.bench.canary import command, summarise
from llmwatch.evaluators.canary import JudgeConfig
from llmwatch.evaluators.canary.guarantees import Traffic as Load
from llmwatch.evaluators.canary.guarantees import guarantees, table
from llmwatch.evaluators.canary.kayenta import KayentaConfig, classify_points, mann_whitney
from llmwatch.sim.canary import SCENARIOS, RolloutOutcome

ISSUE_SCENARIOS = {
    "aa_heavy_tail", "aa_load_drift", "aa_error_bursts", "canary_better", "tail_p99_x2", "ttft_x1.2",
    "errors_1to3pct", "toxicity_x3", "pii_leak_x3", "sparse_metric_aa", "srm_low_traffic", "novelty",
}  # fmt: skip
KEYS = {"rollback_rate", "promote_rate", "undecided_rate", "median_requests_to_decision", "median_minutes_to_decision"}


def test_scenario_names_are_the_issue_contract() -> None:
    assert set(SCENARIOS) == ISSUE_SCENARIOS
    assert SCENARIOS["srm_low_traffic"].rps == 20 and SCENARIOS["srm_low_traffic"].routed_share == 0.5
    assert {s.expect for s in SCENARIOS.values()} == {"promote", "rollback", "srm"}


def test_mann_whitney_interval_by_hand() -> None:
    # 3 vs 3 with a clean shift of 5: the pairwise differences are 3..7, the Hodges–Lehmann estimate is 5
    lower, upper, estimate = mann_whitney(np.array([5.0, 6, 7]), np.array([0.0, 1, 2]), 0.98)
    assert estimate == 5.0 and lower <= estimate <= upper and lower >= 3 and upper <= 7
    cfg = KayentaConfig()
    high = classify_points(np.arange(10, 20, dtype=float), np.arange(0, 10, dtype=float), "increase", cfg)
    assert high == "HIGH"
    assert classify_points(np.arange(0, 10, dtype=float), np.arange(10, 20, dtype=float), "increase", cfg) == "PASS"
    same = np.arange(10, dtype=float)
    assert classify_points(same, same.copy(), "increase", cfg) == "PASS"
    assert classify_points(np.array([np.nan] * 10), same, "increase", cfg) == "NO_DATA"


def test_summary_rules_by_hand() -> None:
    outcomes = [
        RolloutOutcome("promoted", 30.0, 1000.0, None, ""),
        RolloutOutcome("rolled_back", 10.0, 200.0, 5.0, ""),
        RolloutOutcome("undecided", 120.0, 5000.0, 7.0, ""),
        RolloutOutcome("promoted", 40.0, 3000.0, None, ""),
    ]
    s = summarise(outcomes, srm=True)
    assert (s["rollback_rate"], s["promote_rate"], s["undecided_rate"]) == (0.25, 0.5, 0.25)
    assert s["median_minutes_to_decision"] == 30.0 and s["median_requests_to_decision"] == 1000.0  # decided only
    assert s["srm_detected_rate"] == 0.5 and s["median_minutes_to_srm"] == 6.0


def test_guarantees_block_the_forbidden_regression_and_detect_more_with_more_traffic() -> None:
    cfg = JudgeConfig()
    fast, slow = guarantees(cfg, Load(rps=100), step_s=600), guarantees(cfg, Load(rps=20), step_s=600)
    last = [g for g in fast if g.next_weight == 1.0]
    tox = next(g for g in last if g.metric == "toxicity_rate")
    assert tox.alpha == pytest.approx(0.05) and tox.blocked.startswith("×2")  # ×3 of 0.2 % can never reach 100 %
    first = next(g for g in fast if g.metric == "toxicity_rate" and g.weight == 0.01)
    assert first.blocked == "—"  # the budget demands no evidence to go from 1 % to 5 %
    for a, b in zip(fast, slow, strict=True):
        assert a.metric == b.metric and (b.ratio is None or (a.ratio is not None and a.ratio <= b.ratio))
    p99 = next(g for g in last if g.metric == "ttft p99")
    assert p99.ratio is not None and 1.0 < p99.ratio < 2.0  # p99 ×2 is caught at the last step within 10 minutes
    text = table(fast, rps=100, step_s=600)
    assert "| ttft p99 |" in text and "50% → 100% (α 0.05)" in text and "100 requests/s" in text
    assert math.isclose(tox.next_weight, 1.0)


def test_bench_command_writes_json_with_the_contract_keys_and_its_section(tmp_path: Path) -> None:
    out, md = tmp_path / "canary.json", tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n<!-- bench:canary -->\nold\n<!-- /bench:canary -->\n")
    args = ["--rollouts", "1", "--horizon", "20", "--scenario", "srm_low_traffic", "--scenario", "errors_1to3pct"]
    result = CliRunner().invoke(command, [*args, "--json", str(out), "--benchmarks", str(md)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert {"ours", "baseline"} <= set(data)
    for judge in ("ours", "baseline"):
        assert set(data[judge]) == {"srm_low_traffic", "errors_1to3pct"}
        for name, s in data[judge].items():
            assert set(s) >= KEYS, name
        assert {"srm_detected_rate", "median_minutes_to_srm"} <= set(data[judge]["srm_low_traffic"])
    assert data["ours"]["errors_1to3pct"]["rollback_rate"] == 1.0
    assert data["ours"]["srm_low_traffic"]["srm_detected_rate"] == 1.0
    assert data["baseline"]["srm_low_traffic"]["srm_detected_rate"] == 0.0  # Kayenta has no such check
    text = md.read_text()
    assert "old" not in text and "| `errors_1to3pct` |" in text and "Kayenta-style" in text
