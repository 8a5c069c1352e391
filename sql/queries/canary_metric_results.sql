-- Per-metric results of the latest canary verdicts: one row per verdict and metric, failed metrics first.
-- `baseline` and `canary` are the metric's value in each arm: a rate for the rate metrics; for the latency tails
-- (ttft, tpot) the share of requests above the baseline's p95 (about 5 % for a canary like its baseline), for
-- drift the share outside the baseline's central band. `difference` is canary minus baseline in those units.
-- `fail_margin` is the change the judge tolerates before it fails the metric ("any rise": none at all, as for
-- PII leaks). `p_worse` is the judge's always-valid p-value for "the canary is worse than the baseline by more
-- than the fail margin": small is evidence of a regression, and a metric fails once it is below the judge's alpha;
-- near 1 it only says there is no such evidence. A pass is decided otherwise, by a confidence bound inside the
-- pass margin: `decided_by` says which rule gave the result and `reason` gives the judge's numbers.
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
    m.critical                                              AS critical,
    round(m.baseline_value, 4)                              AS baseline,
    round(m.canary_value, 4)                                AS canary,
    round(m.canary_value - m.baseline_value, 4)             AS difference,
    multiIf(
        m.margin = 0, multiIf(m.direction = 'decrease', 'any fall', m.direction = 'either', 'any change', 'any rise'),
        concat(multiIf(m.direction = 'decrease', '-', m.direction = 'either', '±', '+'),
               toDecimalString(100 * m.margin, 2), ' points')
    )                                                       AS fail_margin,
    if(m.baseline_n = 0 OR m.canary_n = 0, NULL, m.p_value) AS p_worse,
    multiIf(
        m.baseline_n = 0 OR m.canary_n = 0, 'no data in an arm',
        m.result = 'fail', 'p_worse below the judge''s alpha',
        m.result = 'pass', 'confidence bound within the pass margin',
        'neither yet'
    )                                                       AS decided_by,
    m.baseline_n                                            AS baseline_n,
    m.canary_n                                              AS canary_n,
    replaceAll(m.reason, 'fail margin +0.00%', 'fail margin: any rise') AS reason,
    verdict_id
FROM canary_verdicts FINAL
ARRAY JOIN metrics AS m
WHERE verdict_id IN latest
ORDER BY ts DESC, verdict_id, metric_result != 'fail', metric
