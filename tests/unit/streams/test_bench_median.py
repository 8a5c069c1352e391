"""`llmwatch bench pipeline --repeat N` quotes medians: column by column, ratios per run."""

from __future__ import annotations

from llmwatch.bench.pipeline import median_run


def _run(own: float, pipe: float, cpu: float | None, p95: float) -> dict[str, object]:
    return {
        "profile": "light",
        "evaluators": "pii",
        "events": 100,
        "evaluators_items_s": own,
        "pipeline_events_s": pipe,
        "ratio": pipe / own,
        "worker_cpu_us": cpu,
        "p95_ms": p95,
    }


def test_median_of_each_column_and_of_the_runs_own_ratios() -> None:
    out = median_run([_run(100, 60, None, 3.0), _run(200, 100, 5.0, 1.0), _run(150, 135, 7.0, 2.0)])
    assert out["evaluators_items_s"] == 150
    assert out["pipeline_events_s"] == 100
    assert out["ratio"] == 0.6  # the runs' own ratios 0.6, 0.5, 0.9; not 100 / 150 from different runs
    assert out["worker_cpu_us"] == 6.0  # a run that could not read CPU is left out, not counted as 0
    assert out["p95_ms"] == 2.0
    assert out["profile"] == "light" and out["runs"] == 3


def test_one_run_is_itself() -> None:
    run = _run(100, 80, 9.0, 4.0)
    assert {k: v for k, v in median_run([run]).items() if k != "runs"} == run
