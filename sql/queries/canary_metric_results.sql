-- Per-metric results of the latest canary verdicts: one row per verdict and metric, failed metrics first.
-- `baseline` and `canary` are the metric's value in each arm (a rate, or for latency and length the quantile named
-- in `quantile`, e.g. ttft p99 in ms); `difference` is canary minus baseline, `change` the relative change.
-- `label` is the judge's word for the metric (stratified@2, Kayenta's labels): HIGH or LOW fail it, PASS passes it,
-- NO_DATA means too few events to decide (only a critical metric then blocks promotion), INCONCLUSIVE not yet.
-- `fail_margin` is the change the judge tolerates before it fails the metric ("any rise": none at all, as for PII
-- leaks): relative (%) for stratified@2, in points for msprt@1 verdicts. `forbidden_change` is the regression a pass
-- rules out before the canary may reach 100 %. `p_worse` is the judge's always-valid p-value for "the canary is
-- worse than the baseline by more than the fail margin": small is evidence of a regression, and a metric fails once
-- it is below the judge's alpha; near 1 it only says there is no such evidence. A pass is decided otherwise:
-- `pass_evidence` (an e-value) must reach the verdict's threshold for its step. `decided_by` says which rule gave
-- the result and `reason` gives the judge's numbers.
-- param verdict_id String = ''  one verdict (a canary_failed alert's `query` annotation names it); empty: the latest
-- param deployment String = ''  one deployment; empty: every deployment
-- param verdicts UInt32 = 20  how many of the latest verdicts
WITH latest AS
(
    SELECT verdict_id
    FROM canary_verdicts FINAL
    WHERE ({verdict_id:String} = '' OR verdict_id = {verdict_id:String})
      AND ({deployment:String} = '' OR deployment = {deployment:String})
    ORDER BY ts DESC
    LIMIT {verdicts:UInt32}
)
SELECT
    ts,
    deployment,
    baseline_version,
    canary_version,
    judge,
    result                                                  AS verdict,
    m.metric                                                AS metric,
    m.result                                                AS metric_result,
    nullIf(JSONExtractString(mj, 'label'), '')              AS label,
    JSONExtract(mj, 'quantile', 'Nullable(Float64)')        AS quantile,
    m.critical                                              AS critical,
    round(m.baseline_value, 4)                              AS baseline,
    round(m.canary_value, 4)                                AS canary,
    round(m.canary_value - m.baseline_value, 4)             AS difference,
    round(m.effect_size, 4)                                 AS change,
    JSONExtract(mj, 'tolerated', 'Nullable(Float64)')       AS tolerated,
    multiIf(
        m.margin = 0, multiIf(m.direction = 'decrease', 'any fall', m.direction = 'either', 'any change', 'any rise'),
        concat(multiIf(m.direction = 'decrease', '-', m.direction = 'either', '±', '+'),
               if(tolerated IS NULL, concat(toDecimalString(100 * m.margin, 2), ' points'),
                  concat(toDecimalString(100 * m.margin, 1), ' %')))
    )                                                       AS fail_margin,
    multiIf(
        JSONExtract(mj, 'forbidden', 'Nullable(Float64)') IS NULL, NULL,
        JSONExtract(mj, 'forbidden', 'Float64') = 0,
        multiIf(m.direction = 'decrease', 'any fall', m.direction = 'either', 'any change', 'any rise'),
        concat(multiIf(m.direction = 'decrease', '-', m.direction = 'either', '±', '+'),
               toDecimalString(100 * JSONExtract(mj, 'forbidden', 'Float64'), 1), ' %')
    )                                                       AS forbidden_change,
    if(m.baseline_n = 0 OR m.canary_n = 0, NULL, m.p_value) AS p_worse,
    round(JSONExtract(mj, 'pass_e_value', 'Nullable(Float64)'), 3) AS pass_evidence,
    multiIf(
        m.baseline_n = 0 OR m.canary_n = 0, 'no data in an arm',
        m.result = 'fail', 'p_worse below the judge''s alpha',
        label = 'PASS', 'pass evidence rules out the forbidden change',
        label = 'NO_DATA', 'too few events to decide (NO_DATA)',
        m.result = 'pass', 'confidence bound within the pass margin',
        'neither yet'
    )                                                       AS decided_by,
    m.baseline_n                                            AS baseline_n,
    m.canary_n                                              AS canary_n,
    replaceAll(m.reason, 'fail margin +0.00%', 'fail margin: any rise') AS reason,
    verdict_id
FROM canary_verdicts FINAL
ARRAY JOIN metrics AS m, JSONExtractArrayRaw(metrics_json) AS mj
WHERE verdict_id IN latest
ORDER BY ts DESC, verdict_id, metric_result != 'fail', metric
