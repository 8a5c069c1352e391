-- Per-metric canary results of the latest verdicts (one row per verdict and metric), failed metrics first.
SELECT
    ts,
    deployment,
    canary_version,
    judge,
    result                      AS verdict,
    m.metric                    AS metric,
    m.result                    AS metric_result,
    m.critical                  AS critical,
    m.baseline_value            AS baseline_value,
    m.canary_value              AS canary_value,
    m.p_value                   AS p_value,
    m.reason                    AS reason
FROM canary_verdicts FINAL
ARRAY JOIN metrics AS m
WHERE verdict_id IN (SELECT verdict_id FROM canary_verdicts FINAL ORDER BY ts DESC LIMIT 50)
ORDER BY ts DESC, metric_result != 'fail', metric
