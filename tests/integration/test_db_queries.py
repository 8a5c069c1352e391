"""Every ready query in sql/queries runs on the real engine, and its numbers match hand-counted data."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmwatch.db.ready import ready_queries
from llmwatch.db.tables import spec_for
from llmwatch.schemas import (
    CanaryVerdict,
    DeadLetter,
    EvalScores,
    Feedback,
    InferenceEvent,
    MetricVerdict,
    TrafficWeights,
)

pytestmark = pytest.mark.integration

# All events fall in one hour, inside canary_vs_baseline's last-24-hours window.
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
T0 = HOUR + timedelta(minutes=10)


def _events() -> list[InferenceEvent]:
    """v1 (baseline, prompt p1): ttft 10..200 ms, 1 error; v2 (canary, p2): ttft 20..400 ms, 4 errors."""
    out = []
    for version, variant, prompt, step, errors in (("v1", "baseline", "p1", 10, 1), ("v2", "canary", "p2", 20, 4)):
        for i in range(20):
            out.append(
                InferenceEvent(
                    event_id=f"{version}-{i}",
                    ts=T0 + timedelta(seconds=i),
                    deployment="chat",
                    model="m",
                    model_version=version,
                    variant=variant,
                    prompt_version=prompt,
                    ttft_ms=float(step * (i + 1)),
                    e2e_ms=1000.0,
                    status="error" if i < errors else "ok",
                )
            )
    return out


def _scores(events: list[InferenceEvent]) -> list[EvalScores]:
    """v1: 2 toxic of 20, 1 leak (EMAIL) of 20. v2: 6 toxic of 19 scored, 4 leaks of 19 evaluated (PHONE, EMAIL)."""
    out = []
    for e in events:
        i = int(e.event_id.split("-")[1])
        v2 = e.model_version == "v2"
        tox = (0.9 if i < (6 if v2 else 2) else 0.1) if not (v2 and i == 19) else None
        leak = (i < (4 if v2 else 1)) if not (v2 and i == 19) else None
        pii = (["EMAIL", "PHONE"] if v2 and i == 0 else ["PHONE"] if v2 else ["EMAIL"]) if leak else []
        out.append(
            EvalScores(
                event_id=e.event_id,
                ts=e.ts,
                deployment=e.deployment,
                model_version=e.model_version,
                variant=e.variant,
                prompt_version=e.prompt_version,
                toxicity_response=tox,
                toxicity_prompt=0.8 if i == 0 else 0.0,
                pii_response=pii,
                pii_leak=leak,
                hallucination=0.3 if v2 else 0.1,
            )
        )
    return out


def _dead_letters() -> list[DeadLetter]:
    def dl(topic: str, offset: int, stage: str, error_type: str, reason: str, minute: int) -> DeadLetter:
        rec = DeadLetter.of(
            raw=b"x" * 10,
            key=None,
            topic=topic,
            partition=0,
            offset=offset,
            reason=reason,
            error_type=error_type,
            stage=stage,
        )
        return rec.model_copy(update={"ts": T0 + timedelta(minutes=minute)})

    first = dl("llm.inference.events", 1, "score", "schema", "field 'model': missing", 0)
    return [
        first,
        dl("llm.inference.events", 7, "score", "schema", "field 'ts': invalid", 5),
        dl("llm.eval.scores", 3, "sink", "processing", "TYPE_MISMATCH", 2),
        first.model_copy(update={"ts": first.ts}),  # redelivered: same topic/partition/offset/stage
    ]


def _verdicts() -> list[CanaryVerdict]:
    common: dict[str, Any] = dict(
        deployment="chat", baseline_version="v1", canary_version="v2", window_start=HOUR, window_end=T0
    )
    return [
        CanaryVerdict(
            verdict_id="vd1",
            ts=T0,
            judge="j@1",
            result="pass",
            **common,
            metrics=[MetricVerdict(metric="ttft", result="pass"), MetricVerdict(metric="toxicity", result="pass")],
        ),
        CanaryVerdict(
            verdict_id="vd2",
            ts=T0 + timedelta(minutes=5),
            judge="stratified@2",
            result="fail",
            **common,
            metrics=[
                MetricVerdict(
                    metric="ttft",
                    result="pass",
                    label="PASS",
                    quantile=0.99,
                    p_value=1.0,
                    margin=0.05,
                    tolerated=0.05,
                    forbidden=0.15,
                    pass_e_value=41.25,
                    effect_size=-0.02,
                    baseline_n=400,
                    canary_n=100,
                    baseline_value=250.0,
                    canary_value=245.0,
                    reason="PASS: ttft p99 -2%: canary 245 ms vs baseline 250 ms …",
                ),
                MetricVerdict(
                    metric="toxicity",
                    result="fail",
                    critical=True,
                    label="HIGH",
                    tolerated=0.0,
                    forbidden=0.0,
                    baseline_value=0.1,
                    canary_value=0.3,
                    p_value=0.0004,
                    margin=0.0,
                    baseline_n=400,
                    canary_n=100,
                    reason="HIGH: toxicity rate: canary 30.00% vs baseline 10.00% (fail margin +0.00%, pass margin …",
                ),
            ],
        ),
    ]


def _weights() -> list[TrafficWeights]:
    def w(seq: int, canary: float, state: str, verdict: str | None) -> TrafficWeights:
        return TrafficWeights(
            deployment="chat", weights={"v1": 1 - canary, "v2": canary}, baseline_version="v1", canary_version="v2",
            state=state, seq=seq, verdict_id=verdict, updated_at=T0 + timedelta(minutes=seq),
        )  # fmt: skip

    moves = [w(0, 0.05, "progressing", None), w(1, 0.25, "progressing", "vd1"), w(2, 0.0, "rolled_back", "vd2")]
    return [*moves, moves[1]]  # the controller's record of seq 1 replayed


def _feedback() -> list[Feedback]:
    return [
        Feedback(feedback_id="f1", event_id="v1-1", ts=T0, deployment="chat", model_version="v1", thumbs=1),
        Feedback(feedback_id="f2", event_id="v1-2", ts=T0, deployment="chat", thumbs=-1),  # version from the event
        Feedback(feedback_id="f3", event_id="v1-3", ts=T0, deployment="chat", thumbs=1, score=0.8),
        Feedback(feedback_id="f4", event_id="v2-3", ts=T0, deployment="chat", score=0.4),
    ]


@pytest.fixture
def seeded(ch_client: Any) -> Any:
    events = _events()
    spec_for(InferenceEvent).insert(ch_client, events)
    spec_for(InferenceEvent).insert(ch_client, events[5:8])  # a replayed slice: counts must not change
    spec_for(EvalScores).insert(ch_client, _scores(events))
    spec_for(DeadLetter).insert(ch_client, _dead_letters())
    spec_for(CanaryVerdict).insert(ch_client, _verdicts())
    spec_for(TrafficWeights).insert(ch_client, _weights())
    spec_for(Feedback).insert(ch_client, _feedback())
    return ch_client


Rows = list[dict[str, Any]]


def check_p95_ttft_hourly(rows: Rows) -> None:
    assert [(r["hour"], r["model_version"], r["events"], r["errors"]) for r in rows] == [
        (HOUR, "v1", 20, 1),
        (HOUR, "v2", 20, 4),
    ]
    # The roll-up counts the replayed slice (60, 70, 80 ms) once in `events` but twice in the latency samples,
    # as 0010_events_hourly_mv.up.sql documents; canary_vs_baseline reads FINAL and gets the exact 191.
    # Latency is sampled from ok requests (v1's first event, 10 ms, is its error).
    replayed = [10.0 * (i + 1) for i in range(1, 20)] + [60.0, 70.0, 80.0]
    assert rows[0]["ttft_p95_ms"] == pytest.approx(
        statistics.quantiles(replayed, n=100, method="inclusive")[94], abs=0.05
    )
    assert rows[1]["ttft_p95_ms"] == pytest.approx(100 + 0.95 * 300, abs=0.05)  # 385.0: v2's ok TTFTs, 100..400
    assert rows[1]["error_rate"] == pytest.approx(0.2)  # no cancelled request: 4 errors of 20


def check_toxicity_rate_by_prompt_version(rows: Rows) -> None:
    by = {r["prompt_version"]: r for r in rows}
    assert (by["p2"]["scored"], by["p2"]["toxic_responses"]) == (19, 6)
    assert by["p2"]["response_toxicity_rate"] == pytest.approx(round(6 / 19, 4))
    assert by["p1"]["response_toxicity_rate"] == pytest.approx(0.1)
    assert by["p1"]["prompt_toxicity_rate"] == pytest.approx(0.05)
    assert rows[0]["prompt_version"] == "p2"  # worst first


def check_pii_leak_rate_by_model_version(rows: Rows) -> None:
    by = {r["model_version"]: r for r in rows}
    assert (by["v2"]["evaluated"], by["v2"]["leaks"]) == (19, 4)
    assert by["v2"]["pii_leak_rate"] == pytest.approx(round(4 / 19, 4))
    assert by["v2"]["leaked_entity_types"] == ["EMAIL", "PHONE"]
    assert (by["v1"]["leaks"], by["v1"]["pii_leak_rate"]) == (1, pytest.approx(0.05))


def check_canary_vs_baseline(rows: Rows) -> None:
    assert [(r["variant"], r["events"]) for r in rows] == [("baseline", 20), ("canary", 20)]
    base, canary = rows
    # latency is sampled from ok requests (evaluators/metrics.py): v1's 19 ok TTFTs are 20..200 step 10, p95 at
    # position 0.95·18 = 17.1 → 190 + 0.1·10 = 191; v2's 16 are 100..400 step 20, 0.95·15 = 14.25 → 380 + 0.25·20
    assert base["ttft_p95_ms"] == pytest.approx(191.0) and canary["ttft_p95_ms"] == pytest.approx(385.0)
    assert base["ttft_p95_delta_ms"] == 0 and canary["ttft_p95_delta_ms"] == pytest.approx(194.0)
    assert canary["error_rate_delta"] == pytest.approx(0.15)
    assert canary["toxicity_rate"] == pytest.approx(round(6 / 19, 4))
    assert canary["toxicity_rate_delta"] == pytest.approx(round(6 / 19, 4) - 0.1, abs=1e-4)
    assert canary["pii_leak_rate_delta"] == pytest.approx(round(4 / 19, 4) - 0.05, abs=1e-4)
    assert canary["hallucination_mean"] == pytest.approx(0.3)


def check_dlq_reasons(rows: Rows) -> None:
    assert [(r["source_topic"], r["stage"], r["records"], r["raw_bytes"]) for r in rows] == [
        ("llm.inference.events", "score", 2, 20),
        ("llm.eval.scores", "sink", 1, 10),
    ]
    # every reason of the group, not only the latest (one per line, most frequent, then latest, first)
    assert rows[0]["distinct_reasons"] == 2
    assert rows[0]["reasons"] == "1 × field 'ts': invalid\n1 × field 'model': missing"
    assert rows[1]["reasons"] == "1 × TYPE_MISMATCH"
    assert rows[0]["first_seen"] == T0 and rows[0]["last_seen"] == T0 + timedelta(minutes=5)


def check_weight_history(rows: Rows) -> None:
    assert [(r["seq"], r["state"], r["verdict_result"]) for r in rows] == [
        (0, "progressing", None),
        (1, "progressing", "pass"),
        (2, "rolled_back", "fail"),
    ]
    assert rows[1]["weights"] == {"v1": 0.75, "v2": 0.25}


def check_canary_metric_results(rows: Rows) -> None:
    assert len(rows) == 4
    fail, passed = rows[0], rows[1]
    assert (fail["verdict"], fail["metric"], fail["metric_result"], fail["critical"]) == (
        "fail",
        "toxicity",
        "fail",
        True,
    )
    assert (fail["baseline"], fail["canary"], fail["difference"]) == (0.1, 0.3, 0.2)
    # a margin of 0 reads as what it is, in the column and in the judge's reason
    assert fail["fail_margin"] == "any rise" and "fail margin: any rise" in fail["reason"]
    assert fail["p_worse"] == 0.0004 and fail["decided_by"] == "p_worse below the judge's alpha"
    assert (fail["label"], fail["forbidden_change"]) == ("HIGH", "any rise")
    # a pass is not a p-value's doing: the row says which rule decided it, relative margins read as percentages
    assert (passed["metric"], passed["metric_result"], passed["label"], passed["quantile"]) == (
        "ttft",
        "pass",
        "PASS",
        0.99,
    )
    assert (passed["fail_margin"], passed["forbidden_change"], passed["change"]) == ("+5.0 %", "+15.0 %", -0.02)
    assert passed["decided_by"] == "pass evidence rules out the forbidden change" and passed["p_worse"] == 1.0
    assert passed["pass_evidence"] == 41.25 and (passed["baseline"], passed["canary"]) == (250.0, 245.0)
    assert rows[2]["decided_by"] == "no data in an arm" and rows[2]["p_worse"] is None  # vd1: no counts
    assert rows[2]["label"] is None and rows[2]["forbidden_change"] is None  # an older judge's verdict
    assert "helper" not in " ".join(fail)


def check_feedback_by_model_version(rows: Rows) -> None:
    by = {r["model_version"]: r for r in rows}
    assert (by["v1"]["feedback"], by["v1"]["thumbs_given"]) == (3, 3)
    assert by["v1"]["thumbs_up_rate"] == pytest.approx(0.6667)
    assert by["v1"]["mean_score"] == pytest.approx(0.8)
    assert (by["v2"]["feedback"], by["v2"]["thumbs_up_rate"], by["v2"]["mean_score"]) == (1, None, 0.4)


CHECKS: dict[str, Callable[[Rows], None]] = {
    name.removeprefix("check_"): fn for name, fn in globals().items() if name.startswith("check_")
}


def test_every_ready_query_has_a_check() -> None:
    assert set(ready_queries()) == set(CHECKS)


def test_ready_queries_give_the_hand_counted_numbers(seeded: Any) -> None:
    for name, query in ready_queries().items():
        assert query.title, f"{name} needs a header comment"
        result = seeded.query(query.sql, parameters=query.parameters() or None)  # each parameter's default
        rows = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
        for row in rows:  # no NaN: undefined rates are NULL
            assert not any(isinstance(v, float) and math.isnan(v) for v in row.values()), (name, row)
        CHECKS[name](rows)


@pytest.mark.parametrize(
    ("name", "params", "expect"),
    [
        ("canary_metric_results", {"verdict_id": "vd1"}, lambda rows: {r["verdict_id"] for r in rows} == {"vd1"}),
        ("canary_metric_results", {"verdicts": 1}, lambda rows: {r["verdict_id"] for r in rows} == {"vd2"}),
        ("canary_metric_results", {"deployment": "other"}, lambda rows: rows == []),
        ("canary_vs_baseline", {"hours": 1}, lambda rows: rows == []),  # the events are 2 hours old
        (
            "canary_vs_baseline",
            {"deployment": "chat", "toxicity_threshold": 0.95},
            lambda rows: rows[1]["toxicity_rate"] == 0,
        ),
        ("p95_ttft_hourly", {"hours": 1}, lambda rows: rows == []),
        ("p95_ttft_hourly", {"deployment": "chat"}, lambda rows: len(rows) == 2),
        ("weight_history", {"deployment": "other"}, lambda rows: rows == []),
        ("dlq_reasons", {"hours": 1}, lambda rows: rows == []),
        ("dlq_reasons", {"hours": 5}, lambda rows: sum(r["records"] for r in rows) == 3),
        ("pii_leak_rate_by_model_version", {"deployment": "chat", "hours": 5}, lambda rows: len(rows) == 2),
        ("toxicity_rate_by_prompt_version", {"toxicity_threshold": 0.95}, lambda rows: rows[0]["toxic_responses"] == 0),
        ("toxicity_rate_by_prompt_version", {"hours": 1, "deployment": "chat"}, lambda rows: rows == []),
        ("feedback_by_model_version", {"hours": 1}, lambda rows: rows == []),
        ("feedback_by_model_version", {"deployment": "chat"}, lambda rows: len(rows) == 2),
    ],
)
def test_ready_query_parameters_change_the_answer(seeded: Any, name: str, params: dict[str, Any], expect: Any) -> None:
    query = ready_queries()[name]
    result = seeded.query(query.sql, parameters=query.parameters(overrides=params))
    rows = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
    assert expect(rows), (name, params, rows)


def test_every_ready_query_parameter_is_exercised() -> None:
    """Each declared parameter is set by a case above (a parameter nothing tests may not do what it says)."""
    cases = test_ready_query_parameters_change_the_answer.pytestmark[0].args[1]  # type: ignore[attr-defined]
    covered = {(name, p) for name, params, _ in cases for p in params}
    declared = {(q.name, p) for q in ready_queries().values() for p in q.params}
    assert declared <= covered, declared - covered
