-- The hourly roll-up counts like every other consumer (evaluators/metrics.py): errors are status = 'error' (a
-- cancelled request is the client's doing and is counted apart), and latencies are sampled from ok requests only
-- (quantiles skip the NULLs that if() gives the others). Hours rolled up before this migration keep the old
-- definitions (errors included cancelled requests, latencies every status); rebuild them as 0010 explains.
ALTER TABLE events_hourly_mv MODIFY QUERY
SELECT
    toStartOfHour(ts)                                                 AS hour,
    deployment,
    model_version,
    variant,
    uniqExactState(event_id)                                          AS events,
    uniqExactIfState(event_id, status = 'error')                      AS errors,
    uniqExactIfState(event_id, status = 'cancelled')                  AS cancelled,
    quantilesState(0.5, 0.95, 0.99)(if(status = 'ok', ttft_ms, NULL)) AS ttft_ms,
    quantilesState(0.5, 0.95, 0.99)(if(status = 'ok', tpot_ms, NULL)) AS tpot_ms,
    quantilesState(0.5, 0.95, 0.99)(if(status = 'ok', e2e_ms, NULL))  AS e2e_ms,
    sumState(toUInt64(input_tokens))                                  AS input_tokens,
    sumState(toUInt64(output_tokens))                                 AS output_tokens,
    sumState(toFloat64(ifNull(cost_usd, 0)))                          AS cost_usd
FROM inference_events
GROUP BY hour, deployment, model_version, variant
