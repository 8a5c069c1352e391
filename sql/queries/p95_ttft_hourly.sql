-- p95 time to first token per model version per hour (with p50/p99, event and error counts).
-- Reads the hourly roll-up (events_hourly, -Merge of the states), so it stays fast over months of events;
-- events count each event_id once. Latencies in milliseconds.
SELECT
    hour,
    deployment,
    model_version,
    uniqExactMerge(events)                              AS events,
    uniqExactIfMerge(errors)                            AS errors,
    round(errors / events, 4)                           AS error_rate,
    quantilesMerge(0.5, 0.95, 0.99)(ttft_ms)            AS ttft_q,
    round(ttft_q[1], 1)                                 AS ttft_p50_ms,
    round(ttft_q[2], 1)                                 AS ttft_p95_ms,
    round(ttft_q[3], 1)                                 AS ttft_p99_ms
FROM events_hourly
GROUP BY hour, deployment, model_version
ORDER BY hour DESC, deployment, model_version
