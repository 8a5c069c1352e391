-- Canary vs baseline over the last hours: one row per deployment, variant and model version, with each metric's
-- difference from the deployment's baseline (positive = canary is higher). Latency and errors come from
-- inference_events, quality from eval_scores (NULL where nothing was scored). Errors are status 'error' out of
-- the requests that finished (cancelled ones left out), latency is sampled from ok requests, a score counts at or
-- above its threshold: the definitions of evaluators/metrics.py, shared by windows, the judge and alerts.
-- param hours UInt32 = 24  hours looked back from now
-- param toxicity_threshold Float64 = eval.toxicity_threshold  toxicity score at or above which a response counts
-- param deployment String = ''  one deployment; empty: every deployment
SELECT
    deployment,
    variant,
    model_version,
    count()                                                            AS events,
    round(countIf(status = 'error') / nullIf(countIf(status != 'cancelled'), 0), 4) AS error_rate,
    round(quantileIf(0.95)(ttft_ms, status = 'ok'), 1)                 AS ttft_p95_ms,
    round(quantileIf(0.95)(e2e_ms, status = 'ok'), 1)                  AS e2e_p95_ms,
    round(countIf(toxicity_response >= {toxicity_threshold:Float64}) / nullIf(countIf(toxicity_response IS NOT NULL), 0), 4) AS toxicity_rate,
    round(countIf(pii_leak) / nullIf(countIf(pii_leak IS NOT NULL), 0), 4) AS pii_leak_rate,
    round(avg(hallucination), 4)                                       AS hallucination_mean,
    round(error_rate - anyIf(error_rate, variant = 'baseline') OVER w, 4)       AS error_rate_delta,
    round(ttft_p95_ms - anyIf(ttft_p95_ms, variant = 'baseline') OVER w, 1)     AS ttft_p95_delta_ms,
    round(toxicity_rate - anyIf(toxicity_rate, variant = 'baseline') OVER w, 4) AS toxicity_rate_delta,
    round(pii_leak_rate - anyIf(pii_leak_rate, variant = 'baseline') OVER w, 4) AS pii_leak_rate_delta
FROM inference_events AS e FINAL
LEFT JOIN
(
    SELECT event_id, toxicity_response, pii_leak, hallucination
    FROM eval_scores FINAL
) AS s ON s.event_id = e.event_id
WHERE e.ts >= now64(3) - toIntervalHour({hours:UInt32})
  AND ({deployment:String} = '' OR e.deployment = {deployment:String})
GROUP BY deployment, variant, model_version
WINDOW w AS (PARTITION BY deployment)
ORDER BY deployment, variant != 'baseline', variant, model_version
SETTINGS join_use_nulls = 1
