"""Load generator: options, open-loop pacing (sends never wait for answers), lateness accounting."""

from __future__ import annotations

import asyncio
import time

import pytest
from click.testing import CliRunner

from llmwatch.cli import cli
from llmwatch.errors import ConfigError
from llmwatch.sim.loadgen import _Schedule, loadgen_config, percentiles


def test_config_takes_rate_and_duration_or_count() -> None:
    assert loadgen_config(scenario="steady", target="kafka", rate=50, duration_s=2).planned == 100
    assert loadgen_config(scenario="steady", target="kafka", count=7).planned == 7
    assert loadgen_config(scenario="steady", target="http://h:1", count=7, rate=5).planned == 7
    for bad in (
        {"target": "kafka", "rate": 5},  # no duration, no count
        {"target": "kafka", "count": 5, "duration_s": 1, "rate": 5},
        {"target": "http://h:1", "count": 5},  # an HTTP target is always paced
        {"target": "ftp://h", "count": 5},
    ):
        with pytest.raises(ConfigError):
            loadgen_config(scenario="steady", **bad)
    with pytest.raises(ConfigError, match="unknown scenario"):
        loadgen_config(scenario="nope", target="kafka", count=1)


def test_cli_refuses_a_run_without_size_before_touching_any_target() -> None:
    result = CliRunner().invoke(cli, ["loadgen", "--scenario", "steady", "--rate", "5", "--target", "kafka"])
    assert result.exit_code != 0
    assert "--duration" in str(result.exception) + result.output


async def test_open_loop_sends_on_schedule_however_slow_the_answers() -> None:
    schedule = _Schedule(n=100, rate=200.0, late_ms=20)
    tasks: list[asyncio.Task[None]] = []
    sent_at: list[float] = []

    def send(i: int, due: float) -> None:
        sent_at.append(time.perf_counter())
        tasks.append(asyncio.create_task(asyncio.sleep(0.3)))  # each answer takes 300 ms

    started = time.perf_counter()
    await schedule.run(send)
    sending = time.perf_counter() - started
    await asyncio.gather(*tasks)
    assert len(sent_at) == 100
    assert sending < 0.495 + 0.25  # a closed loop would need 100 x 0.3 s
    assert (len(sent_at) - 1) / (sent_at[-1] - sent_at[0]) == pytest.approx(200, rel=0.2)


async def test_a_generator_that_cannot_keep_up_reports_late_sends() -> None:
    schedule = _Schedule(n=30, rate=500.0, late_ms=5)

    def send(i: int, due: float) -> None:
        time.sleep(0.01)  # 10 ms of work per 2 ms slot

    await schedule.run(send)
    assert schedule.late >= 20
    assert schedule.max_late_s > 0.1


def test_percentiles() -> None:
    p = percentiles([float(i) for i in range(1, 101)])
    assert p["p50"] == pytest.approx(50.5) and p["p99"] == pytest.approx(99.01) and p["max"] == 100
    assert percentiles([]) == {}
