"""One definition per metric: the same scored events through every consumer give the same counts.

Consumers: the window aggregate (and the alert rule reading its rate), the canary judge's arm, the A/B experiment
reads, the analysts' ready queries and the hourly roll-up, the demo's live view, all on the real ClickHouse engine.
The events sit on the edges where definitions used to differ: cancelled requests (not errors, not in the error
rate's denominator), latencies of failed and cancelled requests (not sampled), scores exactly at a threshold
(counted: `>=`), scores that do not exist (in neither count).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmwatch.db import queries
from llmwatch.db.ready import ready_queries
from llmwatch.db.tables import spec_for
from llmwatch.evaluators.canary import ArmStats
from llmwatch.evaluators.experiments import arms_from_rows
from llmwatch.evaluators.metrics import Thresholds
from llmwatch.schemas import EvalScores, InferenceEvent
from llmwatch.settings import Settings
from llmwatch.streams.alerting import WindowRuleBook, window_rules
from llmwatch.streams.windowing import WindowConfig, WindowKey, WindowStats, to_metrics

pytestmark = pytest.mark.integration

TH = Thresholds(toxicity=0.5, injection=0.5, hallucination=0.5)
#: (status, ttft, toxicity, injection, hallucination, pii_leak, injection_success)
ROWS: list[tuple[str, float | None, float | None, float | None, float | None, bool | None, bool | None]] = [
    ("ok", 100.0, 0.5, 0.5, 0.5, True, True),  # every score exactly at its threshold: counts
    ("ok", 110.0, 0.49, 0.49, 0.49, False, False),  # just below: does not
    ("ok", 120.0, None, None, None, None, None),  # nothing scored: in no quality count
    ("ok", 130.0, 0.9, 0.1, None, False, None),
    ("error", None, 0.1, 0.6, None, False, None),  # an error: counted, no latency sample
    ("error", 5.0, None, None, None, None, None),  # an error that reported a TTFT: still no latency sample
    ("cancelled", 900.0, 0.95, None, 0.7, True, None),  # the client's doing: no error, no latency sample
    ("ok", 140.0, 0.2, None, 0.1, False, None),
]
#: by hand from ROWS
WANT = {
    "requests": 8,
    "finished": 7,
    "errors": 2,
    "latency_samples": 5,
    "toxicity": (6, 3),  # (scored, at or above 0.5): 0.5, 0.9, 0.95
    "injection": (4, 2),  # 0.5, 0.6
    "hallucination": (4, 2),  # 0.5, 0.7
    "pii_leak": (6, 2),
    "injection_success": (2, 1),
}
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def _pairs() -> list[tuple[InferenceEvent, EvalScores]]:
    out = []
    for i, (status, ttft, tox, inj, hal, leak, success) in enumerate(ROWS):
        event = InferenceEvent(
            event_id=f"m-{i}",
            ts=T0 + timedelta(seconds=i),
            deployment="d",
            model="m",
            model_version="v1",
            variant="canary",
            experiment="exp-metrics",
            prompt="p",
            response="r",
            status=status,  # type: ignore[arg-type]
            ttft_ms=ttft,
            e2e_ms=None if ttft is None else ttft + 50,
            output_tokens=10,
        )
        score = EvalScores(
            event_id=event.event_id,
            ts=event.ts,
            deployment="d",
            model_version="v1",
            variant="canary",
            experiment="exp-metrics",
            status=event.status,
            ttft_ms=event.ttft_ms,
            e2e_ms=event.e2e_ms,
            output_tokens=10,
            toxicity_response=tox,
            injection=inj,
            hallucination=hal,
            pii_leak=leak,
            injection_success=success,
        )
        out.append((event, score))
    return out


def _stored(ch_client: Any) -> list[EvalScores]:
    pairs = _pairs()
    spec_for(InferenceEvent).insert(ch_client, [e for e, _ in pairs])
    spec_for(EvalScores).insert(ch_client, [s for _, s in pairs])
    return [s for _, s in pairs]


def test_every_consumer_counts_the_same(ch_client: Any, ch_settings: Settings) -> None:
    scores = _stored(ch_client)
    finished, errors = WANT["finished"], WANT["errors"]

    # the window (and the alert rule that reads its rate)
    cfg = WindowConfig(size_s=3600, lateness_s=0, retention_s=7200, thresholds=TH, drift_sample=0)
    window = WindowStats.new(cfg)
    for s in scores:
        window.add(s, cfg)
    m = to_metrics(WindowKey("d", "v1", "canary", "default"), T0, cfg, window, final=True)
    assert (m.count, m.cancelled_count, m.error_count) == (WANT["requests"], 1, errors)
    assert m.error_rate == pytest.approx(errors / finished)
    assert window.agg.sketches["ttft"].count == WANT["latency_samples"]
    for name in ("toxicity", "injection", "hallucination", "pii_leak", "injection_success"):
        r = window.agg.rate(name)
        assert (r.n, r.hits) == WANT[name], name
    rules = window_rules(
        ttft_p95_ms=None, error_rate=errors / finished - 0.01, pii_leak_rate=None, injection_success_rate=None,
        min_count=1,
    )  # fmt: skip
    [fired] = WindowRuleBook(rules).observe(m)
    assert fired.active

    # the canary judge's arm
    arm = ArmStats(thresholds=TH)
    for s in scores:
        arm.add(s)
    assert (arm.counts["errors"].n, arm.counts["errors"].k) == (finished, errors)
    assert arm.sketches["ttft_ms"].count == WANT["latency_samples"]
    for name in ("toxicity", "hallucination", "pii_leak", "injection_success"):
        assert (arm.counts[name].n, arm.counts[name].k) == WANT[name], name

    # the A/B experiment's reads
    [exp] = arms_from_rows(*queries.experiment_rows(ch_client, "exp-metrics", TH)).values()
    assert (exp.requests, exp.finished, exp.errors, exp.ttft_n) == (
        WANT["requests"], finished, errors, WANT["latency_samples"]
    )  # fmt: skip
    assert (exp.scored, exp.toxic) == WANT["toxicity"]
    assert (exp.halluc_n, exp.hallucinated) == WANT["hallucination"]
    assert (exp.pii_n, exp.pii_leaks) == WANT["pii_leak"]

    # the analysts' ready queries and the hourly roll-up
    ready = ready_queries()
    settings = ch_settings.model_copy(
        update={"eval": ch_settings.eval.model_copy(update={"toxicity_threshold": TH.toxicity})}
    )

    def run(name: str, **overrides: Any) -> dict[str, Any]:
        q = ready[name]
        result = ch_client.query(q.sql, parameters=q.parameters(settings, overrides) or None)
        [row] = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows if "d" in r]
        return row

    vs = run("canary_vs_baseline", hours=24 * 365)
    assert vs["events"] == WANT["requests"] and vs["error_rate"] == pytest.approx(round(errors / finished, 4))
    assert vs["toxicity_rate"] == pytest.approx(round(WANT["toxicity"][1] / WANT["toxicity"][0], 4))
    assert vs["ttft_p95_ms"] < 900  # the cancelled request's 900 ms is not a latency sample
    tox = run("toxicity_rate_by_prompt_version")
    assert (tox["scored"], tox["toxic_responses"]) == WANT["toxicity"]
    hourly = run("p95_ttft_hourly")
    assert (hourly["events"], hourly["errors"], hourly["cancelled"]) == (WANT["requests"], errors, 1)
    assert hourly["error_rate"] == pytest.approx(round(errors / finished, 4))

    # the demo's live view
    [live] = queries.recent_by_version(ch_client, "d", T0 - timedelta(seconds=1), 10**8, TH)
    assert live[1] == WANT["requests"] and live[3] == pytest.approx(errors / finished)
    assert live[4] == pytest.approx(WANT["toxicity"][1] / WANT["toxicity"][0])
    assert live[6] == pytest.approx(WANT["injection"][1] / WANT["injection"][0])
