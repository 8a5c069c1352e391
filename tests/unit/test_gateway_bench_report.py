"""The gateway benchmark's verdict: each round against its own baseline, the median over rounds decides."""

from __future__ import annotations

from llmwatch.bench.gateway import DIRECT, JSON_PATH, Phase, overheads, report


def _phase(name: str, round_: int, p99_ms: float) -> Phase:
    # 100 requests: 98 at 0.1 ms, two at the tail value, so np.percentile(…, 99) lands on p99_ms
    return Phase(name, latencies_ms=[0.1] * 98 + [p99_ms] * 2, wall_s=1.0, round=round_)


def _phases(gateway_p99s: list[float]) -> list[Phase]:
    out = []
    for number, p99 in enumerate(gateway_p99s, start=1):
        out += [_phase(DIRECT, number, 0.4), _phase(JSON_PATH, number, p99)]
    return out


def test_overhead_is_taken_against_the_same_rounds_direct_phase() -> None:
    phases = _phases([1.4, 2.9])
    phases[2].latencies_ms = [0.1] * 98 + [1.4] * 2  # round 2's baseline had a tail too
    assert [round(o99, 3) for _, o99 in overheads(phases)[JSON_PATH]] == [1.0, 1.5]


def test_one_bad_round_of_three_does_not_decide_the_verdict_but_two_do() -> None:
    publisher = {"sent": 300, "failed": 0, "dropped": 0}
    markdown, ok = report(_phases([1.4, 3.4, 1.6]), publisher, 100.0, 1.0, (0.0, 0.0))
    assert ok and "median p99 **1.200 ms**" in markdown and "1.000 / 3.000 / 1.200" in markdown
    _, ok = report(_phases([1.4, 3.4, 2.6]), publisher, 100.0, 1.0, (0.0, 0.0))
    assert not ok


def test_an_error_fails_the_verdict_whatever_the_latency() -> None:
    phases = _phases([1.0])
    phases[1].errors = 1
    _, ok = report(phases, {"sent": 99, "failed": 0, "dropped": 0}, 100.0, 1.0, (0.0, 0.0))
    assert not ok
