ALTER TABLE events_hourly_mv MODIFY QUERY
SELECT
    toStartOfHour(ts)                                   AS hour,
    deployment,
    model_version,
    variant,
    uniqExactState(event_id)                            AS events,
    uniqExactIfState(event_id, status != 'ok')          AS errors,
    quantilesState(0.5, 0.95, 0.99)(ttft_ms)            AS ttft_ms,
    quantilesState(0.5, 0.95, 0.99)(tpot_ms)            AS tpot_ms,
    quantilesState(0.5, 0.95, 0.99)(e2e_ms)             AS e2e_ms,
    sumState(toUInt64(input_tokens))                    AS input_tokens,
    sumState(toUInt64(output_tokens))                   AS output_tokens,
    sumState(toFloat64(ifNull(cost_usd, 0)))            AS cost_usd
FROM inference_events
GROUP BY hour, deployment, model_version, variant
