"""Reading what a run landed in ClickHouse, through the worker that holds an embedded chDB folder.

chDB keeps a folder locked by the first process that opens it, and the worker under test must be that process:
these helpers never open the folder themselves (`require_holder`), they go through the worker's query endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmwatch.db.owner import open_query_client
from llmwatch.settings import Settings

from .procstats import metric_sums

if TYPE_CHECKING:
    from .processes import WorkerProcess


def query_rows(settings: Settings, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """All rows of a query (values travel as server-side parameters: `{name:Type}` in the SQL)."""
    client = open_query_client(settings, require_holder=True)
    try:
        return [tuple(r) for r in client.query(sql, parameters=parameters).result_rows]
    finally:
        client.close()


def query_scalar(settings: Settings, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
    """The first value of the first row (None when there is no row)."""
    rows = query_rows(settings, sql, parameters)
    return rows[0][0] if rows else None


def landed_counts(settings: Settings) -> tuple[int, int, int, int]:
    """(events, score rows, sum of window counts, dead letters), FINAL: what "nothing lost" is checked on."""
    row = query_rows(
        settings,
        "SELECT (SELECT count() FROM inference_events FINAL), (SELECT count() FROM eval_scores FINAL), "
        "(SELECT sum(count) FROM window_metrics FINAL), (SELECT count() FROM dead_letters FINAL)",
    )[0]
    return (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0))


#: the worker gauges and counters that say where a stalled run stands
_PROGRESS_METRICS = (
    "llmwatch_agent_events_total",
    "llmwatch_agent_emitted_total",
    "llmwatch_sink_rows_total",
    "llmwatch_late_events_total",
    "llmwatch_held_events",
    "llmwatch_open_windows",
    "llmwatch_stuck_batches_total",
    "llmwatch_sink_retries_total",
    "llmwatch_dlq_total",
)

_WINDOWS_VS_SCORES = """
SELECT toString(w.window_start), w.deployment, w.model_version, w.n, w.late, w.final, s.n
FROM (
    SELECT window_start, deployment, model_version, sum(count) AS n, sum(late_count) AS late, min(final) AS final
    FROM window_metrics FINAL GROUP BY window_start, deployment, model_version
) AS w
FULL OUTER JOIN (
    SELECT toStartOfInterval(ts, toIntervalMillisecond({size_ms:UInt64})) AS window_start, deployment, model_version,
           count() AS n
    FROM eval_scores FINAL GROUP BY window_start, deployment, model_version
) AS s USING (window_start, deployment, model_version)
ORDER BY window_start, deployment, model_version
"""


def landing_report(settings: Settings, worker: WorkerProcess | None = None, size_s: float | None = None) -> str:
    """Where a "nothing lost" wait stands: the landed counts, the window counts beside the score rows of each
    window (which window over- or under-counts), and the worker's progress metrics."""
    lines = [f"landed (events, scores, window sum, dlq): {landed_counts(settings)}"]
    size = size_s or settings.worker.window_size_s
    rows = query_rows(settings, _WINDOWS_VS_SCORES, {"size_ms": int(size * 1000)})
    lines.append("window start | deployment | version | window count | late | final | score rows")
    lines += [" | ".join(str(v) for v in r) + ("" if r[3] == r[6] else "   <-- differs") for r in rows]
    if worker is not None and worker.alive():
        from prometheus_client.parser import text_string_to_metric_families

        text = worker.metrics()
        wanted = {m.removesuffix("_total") for m in _PROGRESS_METRICS}
        for family in text_string_to_metric_families(text):
            if family.name.removesuffix("_total") in wanted:
                values = {",".join(f"{k}={v}" for k, v in s.labels.items()): s.value for s in family.samples}
                lines.append(f"{family.name}: {values}")
        lines.append(f"llmwatch_consumer_lag: {metric_sums(text, 'llmwatch_consumer_lag', by='topic')}")
    return "\n".join(lines)
