"""The soak's figures and checks from samples alone (no processes): the verdict must follow the numbers."""

from __future__ import annotations

import pytest

from llmwatch.bench.soak import Sample, SoakResult, report_markdown
from llmwatch.harness import metric_sums


def _result(worker_mb: list[float], *, lag: float = 100.0, rows: int = 1000, dlq: int = 0) -> SoakResult:
    r = SoakResult(minutes=1, rate=50, evaluators="light", warmup_s=30)
    for i, mb in enumerate(worker_mb):
        r.samples.append(
            Sample(
                t=i * 10.0,
                rss_mb={"gateway": 60.0, "worker": mb},
                cpu_s={"gateway": i * 1.0, "worker": i * 3.0},
                lag={"events": lag / 2, "scores": lag / 2},
                rows=rows,
                answered=1000,
                queue=0,
            )
        )
    r.traffic_end_t = (len(worker_mb) - 1) * 10.0
    r.sent = r.answered = r.ok = 1000
    r.rows, r.scores, r.window_sum = rows, 1000, 1000
    r.lost = max(0, 1000 - rows)
    r.dlq = dlq
    r.final_lag = 0
    r.publisher = {"sent": 1000, "dropped": 0, "failed": 0}
    r.rollout = {"started": True, "state": "progressing", "moves": 1}
    return r


def test_memory_is_measured_from_the_first_sample_after_the_warm_up() -> None:
    r = _result([500, 900, 1000, 1000, 1010, 1020, 1030])  # start-up growth before 30 s does not count
    m = r.memory()["worker"]
    assert m["start_mb"] == 1000 and m["end_mb"] == 1030 and m["max_mb"] == 1030
    assert m["growth_mb"] == 30 and m["allowed_mb"] == 250  # 25 % of 1000 beats 150
    assert m["cpu"] == pytest.approx(0.3)
    assert r.passed()
    assert "✅ worker memory flat" in report_markdown(r)


@pytest.mark.parametrize(
    ("kwargs", "failed"),
    [
        ({"worker_mb": [1000] * 4 + [1300]}, "worker memory flat"),
        ({"worker_mb": [1000] * 5, "lag": 1500}, "lag bounded"),
        ({"worker_mb": [1000] * 5, "rows": 999}, "zero lost"),
        ({"worker_mb": [1000] * 5, "dlq": 1}, "no dead letters"),
    ],
)
def test_each_check_fails_on_its_own_number(kwargs: dict, failed: str) -> None:
    r = _result(**kwargs)
    checks = r.checks()
    assert not checks[failed][0]
    assert [name for name, (ok, _) in checks.items() if not ok] == [failed]
    assert not r.passed()


def test_metric_sums_adds_partitions_up_per_topic() -> None:
    text = (
        "# TYPE llmwatch_consumer_lag gauge\n"
        'llmwatch_consumer_lag{partition="0",topic="a"} 3.0\n'
        'llmwatch_consumer_lag{partition="1",topic="a"} 4.0\n'
        'llmwatch_consumer_lag{partition="0",topic="b"} 1.0\n'
    )
    assert metric_sums(text, "llmwatch_consumer_lag", by="topic") == {"a": 7.0, "b": 1.0}
    assert metric_sums(text, "llmwatch_consumer_lag") == {None: 8.0}
