"""Simulation: the Kayenta-style classifier by hand, the request model, and a small bench run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from llmwatch.bench.canary import command
from llmwatch.evaluators.canary_judge import JudgeConfig
from llmwatch.sim.canary import (
    SCENARIOS,
    SimConfig,
    TrafficModel,
    _Grid,
    _mw_high,
    simulate_kayenta,
    simulate_ours,
)

NAMES = ["aa", "ttft_x1.5", "ttft_x2", "errors_+1pt", "errors_+5pt", "toxicity_x2", "pii_leak_0.5pct"]


def test_scenario_names_are_the_contract() -> None:
    assert list(SCENARIOS) == NAMES
    base = TrafficModel()
    assert SCENARIOS["ttft_x2"](base).ttft_median_ms == 2 * base.ttft_median_ms
    assert SCENARIOS["errors_+5pt"](base).error_rate == pytest.approx(base.error_rate + 0.05)
    assert SCENARIOS["pii_leak_0.5pct"](base).pii_leak_rate == 0.005
    assert SCENARIOS["aa"](base) == base


def test_mann_whitney_classifier_by_hand() -> None:
    # m = n = 3: critical index max(⌊4.5 − 1.96·√(63/12)⌋, 1) = 1, so the CI's lower end is the smallest of the
    # 9 pairwise differences (3); the Hodges–Lehmann estimate is their median (5); 3 > 0.25·5 → High.
    canary, control = np.array([[5.0, 6, 7]]), np.array([[0.0, 1, 2]])
    assert _mw_high(canary, control, 0.25, 0.95).tolist() == [True]
    assert _mw_high(control, canary, 0.25, 0.95).tolist() == [False]  # lower is not High
    assert _mw_high(canary, canary, 0.25, 0.95).tolist() == [False]  # identical data pass
    # Smallest difference 1, estimate 5: 1 ≤ 1.25 → not High (Kayenta's effect-size guard).
    assert _mw_high(np.array([[3.0, 6, 9]]), np.array([[0.0, 1, 2]]), 0.25, 0.95).tolist() == [False]


def test_grid_cells_hold_all_the_mass_on_sketch_edges() -> None:
    g = _Grid(400.0, 0.5, 0.01, [(0.85, 0.995)])
    p = g.probs(400.0, 0.5)
    gamma = 1 + 2 * 0.01 / 0.99
    keys = np.log(g.edges) / np.log(gamma)
    assert p.sum() == pytest.approx(1.0) and np.allclose(keys, np.round(keys))
    assert p[0] < 0.86 and p[-1] < 0.006  # the fine window covers the quantiles the judge reads
    # A 2× slower arm: P(X > baseline p99.5) = 1 − Φ(2.576 − ln 2 / 0.5) ≈ 0.117 (the edge rounds up a bucket).
    assert 0.10 < g.probs(800.0, 0.5)[-1] <= 0.117


def test_small_simulation_tells_regressions_from_a_a() -> None:
    sim = SimConfig(rollouts=60, horizon_canary=800, seed=1)
    judge = JudgeConfig()
    aa = simulate_ours("aa", sim, judge, np.random.default_rng(1), track_pass=True)
    slow = simulate_ours("ttft_x2", sim, judge, np.random.default_rng(2))
    assert aa.rollback_rate == 0.0 and aa.pass_at is not None
    assert slow.rollback_rate == 1.0 and (slow.quantile(0.5) or 0) <= 200
    kay = simulate_kayenta("ttft_x2", sim.model_copy(update={"horizon_canary": 1000}), np.random.default_rng(3))
    assert kay.rollback_rate == 1.0 and (kay.quantile(0.5) or 0) >= 900  # it cannot act before its first interval


def test_bench_command_writes_json_and_its_section(tmp_path: Path) -> None:
    out, md = tmp_path / "canary.json", tmp_path / "BENCHMARKS.md"
    args = ["--rollouts", "20", "--horizon", "300", "--json", str(out), "--benchmarks", str(md)]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == {"ours", "baseline"}
    for side in data.values():
        assert 0.0 <= side["aa_false_rollback_rate"] <= 1.0
        for name in NAMES[1:]:
            assert set(side[name]) >= {"detection_rate", "median_requests_to_rollback"}
    assert data["ours"]["ttft_x2"]["detection_rate"] == 1.0
    text = md.read_text()
    assert "<!-- bench:canary -->" in text and "`ttft_x2`" in text and "Targets:" in text
