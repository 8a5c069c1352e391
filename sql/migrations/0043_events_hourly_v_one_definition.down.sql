CREATE OR REPLACE VIEW events_hourly_v AS
SELECT
    hour,
    deployment,
    model_version,
    variant,
    uniqExactMerge(events)                         AS events,
    uniqExactIfMerge(errors)                       AS errors,
    if(events = 0, 0, errors / events)             AS error_rate,
    quantilesMerge(0.5, 0.95, 0.99)(ttft_ms)       AS ttft_q,
    ttft_q[1]                                      AS ttft_p50_ms,
    ttft_q[2]                                      AS ttft_p95_ms,
    ttft_q[3]                                      AS ttft_p99_ms,
    quantilesMerge(0.5, 0.95, 0.99)(tpot_ms)       AS tpot_q,
    tpot_q[1]                                      AS tpot_p50_ms,
    tpot_q[2]                                      AS tpot_p95_ms,
    tpot_q[3]                                      AS tpot_p99_ms,
    quantilesMerge(0.5, 0.95, 0.99)(e2e_ms)        AS e2e_q,
    e2e_q[1]                                       AS e2e_p50_ms,
    e2e_q[2]                                       AS e2e_p95_ms,
    e2e_q[3]                                       AS e2e_p99_ms,
    sumMerge(input_tokens)                         AS input_tokens,
    sumMerge(output_tokens)                        AS output_tokens,
    sumMerge(cost_usd)                             AS cost_usd
FROM events_hourly
GROUP BY hour, deployment, model_version, variant
