"""`llmwatch bench gateway` end to end at a low rate: a real gateway process, real Kafka, every request counted."""

from __future__ import annotations

import pytest

from llmwatch.bench.gateway import DIRECT, JSON_PATH, SSE_PATH, report, run_bench

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.asyncio(loop_scope="session")
async def test_bench_measures_every_path_each_round_and_the_publisher_sends_every_event() -> None:
    phases, publisher = await run_bench(rate=100.0, duration_s=1.0, warmup_s=0.3, stream=True, rounds=2)
    assert [(p.round, p.name) for p in phases] == [(r, n) for r in (1, 2) for n in (DIRECT, JSON_PATH, SSE_PATH)]
    assert [(len(p.latencies_ms), p.errors) for p in phases] == [(100, 0)] * 6
    # warm-up and measured requests of both gateway paths in both rounds, each published exactly once
    assert publisher == {"sent": 2 * 2 * (30 + 100), "failed": 0, "dropped": 0}
    # which path is faster is the benchmark's to say (a timed assertion flakes on a shared 2-core machine)
    assert all(0 < p.q(50) <= p.q(99) for p in phases)
    markdown, _ok = report(phases, publisher, 100.0, 1.0, (0.0, 0.0))
    assert "| 2 | engine, called directly | 100 | 0 |" in markdown
    assert "median p99 **" in markdown and "Verdict" in markdown
