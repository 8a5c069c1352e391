"""The reads llmwatch makes of its own tables, in one place: SQL texts with server-side parameters
(`{name:Type}`), so no value is ever spliced into SQL, and counts with the one definition of each metric
(evaluators/metrics.py, `SQL_PREDICATES`).

Every function takes any client with `query(sql, parameters=…)` (clickhouse-connect's, or the holder's endpoint
client `llmwatch.db.owner.RemoteQueryClient`) and returns plain rows: epoch milliseconds and JSON strings rather
than driver types, so both clients give the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from llmwatch.evaluators.metrics import SQL_PREDICATES as P
from llmwatch.evaluators.metrics import Thresholds

Rows = list[tuple[Any, ...]]


def rows(client: Any, sql: str, parameters: Mapping[str, Any] | None = None) -> Rows:
    result = client.query(sql, parameters=dict(parameters) if parameters else None)
    return [tuple(r) for r in result.result_rows]


def described(client: Any, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """(name, type) of each column a query returns, from `DESCRIBE (query)`, which plans it without running it.

    chDB (through clickhouse-connect) gives no column names with an empty result; this names them. Raises the
    engine's error for a statement that is not a query (SHOW, DESCRIBE itself)."""
    body = sql.strip().rstrip(";").strip()
    result = client.query(f"DESCRIBE ({body}\n)", parameters=dict(parameters) if parameters else None)
    return [(str(r[0]), str(r[1])) for r in result.result_rows]


def _span(deployment: str, since: dt.datetime, until: dt.datetime | None = None) -> dict[str, Any]:
    return {"deployment": deployment, "since": since, "until": until or dt.datetime.now(dt.UTC)}


# ------------------------------------------------------------------------------ a deployment over a span
_MOVES = """
SELECT seq, toUnixTimestamp64Milli(updated_at), toJSONString(weights), state, canary_version, baseline_version,
       reason, verdict_id, command_id
FROM traffic_weights FINAL
WHERE deployment = {deployment:String}
  AND updated_at BETWEEN {since:DateTime64(3, 'UTC')} AND {until:DateTime64(3, 'UTC')}
ORDER BY seq, updated_at"""

_WINDOWS = """
SELECT toUnixTimestamp64Milli(window_start), model_version, count, ttft_p95_ms, error_rate, toxicity_rate,
       pii_leak_rate, injection_rate, injection_success_rate, drift_score
FROM window_metrics FINAL
WHERE deployment = {deployment:String}
  AND window_start BETWEEN {since:DateTime64(3, 'UTC')} AND {until:DateTime64(3, 'UTC')}
ORDER BY window_start, model_version"""

_VERDICTS = """
SELECT toUnixTimestamp64Milli(ts), verdict_id, canary_version, baseline_version, result, reason,
       arrayFilter((m, x) -> x = 'fail', metrics.metric, metrics.result), canary_n, baseline_n
FROM canary_verdicts FINAL
WHERE deployment = {deployment:String} AND ts BETWEEN {since:DateTime64(3, 'UTC')} AND {until:DateTime64(3, 'UTC')}
ORDER BY ts"""

_VERDICTS_BY_ID = """
SELECT verdict_id, result, canary_version, arrayFilter((m, x) -> x = 'fail', metrics.metric, metrics.result), reason
FROM canary_verdicts FINAL
WHERE verdict_id IN {ids:Array(String)}"""

_ALERTS = """
SELECT toUnixTimestamp64Milli(ts), rule, severity, status, summary, verdict_id, labels['source']
FROM alerts FINAL
WHERE deployment = {deployment:String} AND ts BETWEEN {since:DateTime64(3, 'UTC')} AND {until:DateTime64(3, 'UTC')}
ORDER BY ts"""

_EVENTS_BY_VERSION = """
SELECT model_version, count()
FROM inference_events FINAL
WHERE deployment = {deployment:String} AND ts BETWEEN {since:DateTime64(3, 'UTC')} AND {until:DateTime64(3, 'UTC')}
GROUP BY model_version
ORDER BY model_version"""


def rollout_moves(client: Any, deployment: str, since: dt.datetime, until: dt.datetime | None = None) -> Rows:
    """(seq, updated_at ms, weights JSON, state, canary, baseline, reason, verdict_id, command_id) in seq order."""
    return rows(client, _MOVES, _span(deployment, since, until))


def window_rows(client: Any, deployment: str, since: dt.datetime, until: dt.datetime | None = None) -> Rows:
    """(start ms, model_version, count, ttft p95, error, toxicity, PII-leak, injection, injection success rates,
    drift score) of the latest emit of every window."""
    return rows(client, _WINDOWS, _span(deployment, since, until))


def verdict_rows(client: Any, deployment: str, since: dt.datetime, until: dt.datetime | None = None) -> Rows:
    """(ts ms, verdict_id, canary, baseline, result, reason, failed metrics, canary_n, baseline_n) in time order."""
    return rows(client, _VERDICTS, _span(deployment, since, until))


def verdicts_by_id(client: Any, ids: Sequence[str]) -> Rows:
    """(verdict_id, result, canary, failed metrics, reason) of the given verdicts."""
    return rows(client, _VERDICTS_BY_ID, {"ids": list(ids)}) if ids else []


def alert_rows(client: Any, deployment: str, since: dt.datetime, until: dt.datetime | None = None) -> Rows:
    """(ts ms, rule, severity, status, summary, verdict_id, source) in time order."""
    return rows(client, _ALERTS, _span(deployment, since, until))


def events_by_version(client: Any, deployment: str, since: dt.datetime, until: dt.datetime | None = None) -> Rows:
    """(model_version, events) in the span."""
    return rows(client, _EVENTS_BY_VERSION, _span(deployment, since, until))


# ------------------------------------------------------------------------------------- live figures
_LATEST_WEIGHTS = """
SELECT toJSONString(weights), state, reason
FROM traffic_weights
WHERE deployment = {deployment:String} AND updated_at >= {since:DateTime64(3, 'UTC')}
ORDER BY seq DESC
LIMIT 1"""

_RECENT_BY_VERSION = f"""
SELECT model_version, count(),
       quantileIf(0.95)(ttft_ms, {P["is_latency_sample"]}),
       countIf({P["is_error"]}) / nullIf(countIf({P["counts_for_errors"]}), 0),
       countIf({P["is_toxic"]}) / nullIf(countIf(toxicity_response IS NOT NULL), 0),
       countIf({P["is_pii_leak"]}) / nullIf(countIf(pii_leak IS NOT NULL), 0),
       countIf({P["is_injection"]}) / nullIf(countIf(injection IS NOT NULL), 0),
       countIf({P["is_injection_success"]}) / nullIf(countIf(injection_success IS NOT NULL), 0)
FROM eval_scores
WHERE deployment = {{deployment:String}} AND ts >= {{since:DateTime64(3, 'UTC')}}
  AND ts >= now64(3) - toIntervalSecond({{last_s:UInt32}})
GROUP BY model_version"""

_RECENT_VERDICTS = """
SELECT ts, canary_version, result, reason
FROM canary_verdicts
WHERE deployment = {deployment:String} AND ts >= {since:DateTime64(3, 'UTC')}
ORDER BY ts DESC
LIMIT {limit:UInt32}"""

_RECENT_ALERTS = """
SELECT ts, rule, severity, summary
FROM alerts
WHERE deployment = {deployment:String} AND ts >= {since:DateTime64(3, 'UTC')}
ORDER BY ts DESC
LIMIT {limit:UInt32}"""

_EVENT_COUNT = """
SELECT count()
FROM inference_events
WHERE deployment = {deployment:String} AND ts >= {since:DateTime64(3, 'UTC')}"""


def latest_weights(client: Any, deployment: str, since: dt.datetime) -> tuple[Any, ...] | None:
    """(weights JSON, state, reason) of the newest move since `since` (None when there is none)."""
    found = rows(client, _LATEST_WEIGHTS, {"deployment": deployment, "since": since})
    return found[0] if found else None


def recent_by_version(client: Any, deployment: str, since: dt.datetime, last_s: int, thresholds: Thresholds) -> Rows:
    """Per model version over the last `last_s` seconds (and not before `since`): (version, scores, ttft p95,
    error rate, toxicity rate, PII-leak rate, injection rate, injection success rate), counted as everywhere."""
    params = {"deployment": deployment, "since": since, "last_s": last_s, **thresholds.sql_parameters()}
    return rows(client, _RECENT_BY_VERSION, params)


def recent_verdicts(client: Any, deployment: str, since: dt.datetime, limit: int) -> Rows:
    return rows(client, _RECENT_VERDICTS, {"deployment": deployment, "since": since, "limit": limit})


def recent_alerts(client: Any, deployment: str, since: dt.datetime, limit: int) -> Rows:
    return rows(client, _RECENT_ALERTS, {"deployment": deployment, "since": since, "limit": limit})


def event_count(client: Any, deployment: str, since: dt.datetime) -> int:
    return int(rows(client, _EVENT_COUNT, {"deployment": deployment, "since": since})[0][0])


# ------------------------------------------------------------------------------------------ experiments
_EXPERIMENT_EVENTS = f"""
SELECT model_version, countIf({P["counts_for_errors"]}), countIf({P["is_error"]}),
       countIf(ttft_ms IS NOT NULL AND {P["is_latency_sample"]}),
       avgOrDefaultIf(ttft_ms, {P["is_latency_sample"]}), varSampOrDefaultIf(ttft_ms, {P["is_latency_sample"]}),
       quantileExactIf(0.5)(ttft_ms, {P["is_latency_sample"]}),
       quantileExactIf(0.95)(ttft_ms, {P["is_latency_sample"]}),
       count()
FROM inference_events FINAL
WHERE experiment = {{experiment:String}}
GROUP BY model_version"""

_EXPERIMENT_FEEDBACK = """
SELECT e.model_version, countIf(f.thumbs IS NOT NULL), countIf(f.thumbs = 1), count(f.score),
       avgOrDefault(f.score), varSampOrDefault(f.score)
FROM feedback AS f FINAL
INNER JOIN (SELECT event_id, model_version FROM inference_events FINAL WHERE experiment = {experiment:String}) AS e
    ON e.event_id = f.event_id
GROUP BY e.model_version"""

_EXPERIMENT_SCORES = f"""
SELECT model_version, count(toxicity_response), countIf({P["is_toxic"]}), count(pii_leak), countIf({P["is_pii_leak"]}),
       count(hallucination), countIf({P["is_hallucinated"]})
FROM eval_scores FINAL
WHERE experiment = {{experiment:String}}
GROUP BY model_version"""


def experiment_rows(client: Any, experiment: str, thresholds: Thresholds) -> tuple[Rows, Rows, Rows]:
    """The three reads behind an experiment report, per model version:
    events (finished, errors, ttft samples, ttft mean, variance, p50, p95, requests),
    feedback (thumbs given, thumbs up, scores, score mean, variance),
    scores (toxicity scored, toxic, PII scored, leaks, hallucination scored, hallucinated)."""
    name = {"experiment": experiment}
    return (
        rows(client, _EXPERIMENT_EVENTS, name),
        rows(client, _EXPERIMENT_FEEDBACK, name),
        rows(client, _EXPERIMENT_SCORES, {**name, **thresholds.sql_parameters()}),
    )
