-- What analysts read, with the error rate of every other consumer: errors / (events − cancelled)
-- (evaluators/metrics.py). The latency quantiles are kept as columns, without the helper arrays.
CREATE OR REPLACE VIEW events_hourly_v AS
SELECT
    hour,
    deployment,
    model_version,
    variant,
    uniqExactMerge(events)                                  AS events,
    uniqExactIfMerge(errors)                                AS errors,
    uniqExactIfMerge(cancelled)                             AS cancelled,
    if(events - cancelled = 0, 0, errors / (events - cancelled)) AS error_rate,
    quantilesMerge(0.5, 0.95, 0.99)(ttft_ms)[1]             AS ttft_p50_ms,
    quantilesMerge(0.5, 0.95, 0.99)(ttft_ms)[2]             AS ttft_p95_ms,
    quantilesMerge(0.5, 0.95, 0.99)(ttft_ms)[3]             AS ttft_p99_ms,
    quantilesMerge(0.5, 0.95, 0.99)(tpot_ms)[1]             AS tpot_p50_ms,
    quantilesMerge(0.5, 0.95, 0.99)(tpot_ms)[2]             AS tpot_p95_ms,
    quantilesMerge(0.5, 0.95, 0.99)(tpot_ms)[3]             AS tpot_p99_ms,
    quantilesMerge(0.5, 0.95, 0.99)(e2e_ms)[1]              AS e2e_p50_ms,
    quantilesMerge(0.5, 0.95, 0.99)(e2e_ms)[2]              AS e2e_p95_ms,
    quantilesMerge(0.5, 0.95, 0.99)(e2e_ms)[3]              AS e2e_p99_ms,
    sumMerge(input_tokens)                                  AS input_tokens,
    sumMerge(output_tokens)                                 AS output_tokens,
    sumMerge(cost_usd)                                      AS cost_usd
FROM events_hourly
GROUP BY hour, deployment, model_version, variant
