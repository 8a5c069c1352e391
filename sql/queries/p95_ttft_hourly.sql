-- p95 time to first token per model version per hour (with p50/p99, event, error and cancelled counts).
-- Reads the hourly roll-up (events_hourly, -Merge of the states), so it stays fast over months of events;
-- events count each event_id once. Latencies in milliseconds, sampled from ok requests; the error rate is errors
-- out of the requests that finished (evaluators/metrics.py). Hours rolled up before migration 0042 counted
-- cancelled requests as errors and sampled every status.
-- param hours UInt32 = 168  hours looked back from now (a week); 0: every hour
-- param deployment String = ''  one deployment; empty: every deployment
SELECT
    hour,
    deployment,
    model_version,
    uniqExactMerge(events)                                        AS events,
    uniqExactIfMerge(errors)                                      AS errors,
    uniqExactIfMerge(cancelled)                                   AS cancelled,
    round(if(events - cancelled = 0, 0, errors / (events - cancelled)), 4) AS error_rate,
    round(quantilesMerge(0.5, 0.95, 0.99)(ttft_ms)[1], 1)         AS ttft_p50_ms,
    round(quantilesMerge(0.5, 0.95, 0.99)(ttft_ms)[2], 1)         AS ttft_p95_ms,
    round(quantilesMerge(0.5, 0.95, 0.99)(ttft_ms)[3], 1)         AS ttft_p99_ms
FROM events_hourly
WHERE ({hours:UInt32} = 0 OR hour >= toStartOfHour(now() - toIntervalHour({hours:UInt32})))
  AND ({deployment:String} = '' OR deployment = {deployment:String})
GROUP BY hour, deployment, model_version
ORDER BY hour DESC, deployment, model_version
