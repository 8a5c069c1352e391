-- Traffic weight history: every move the controller made, in order, with the verdict or command behind it.
-- param deployment String = ''  one deployment; empty: every deployment
SELECT
    w.deployment                AS deployment,
    w.seq                       AS seq,
    w.updated_at                AS updated_at,
    w.state                     AS state,
    w.step_index                AS step_index,
    w.weights                   AS weights,
    w.reason                    AS reason,
    w.verdict_id                AS verdict_id,
    v.judge                     AS judge,
    v.result                    AS verdict_result,
    w.command_id                AS command_id
FROM traffic_weights AS w FINAL
LEFT JOIN (SELECT verdict_id, judge, result FROM canary_verdicts FINAL) AS v ON v.verdict_id = w.verdict_id
WHERE {deployment:String} = '' OR w.deployment = {deployment:String}
ORDER BY deployment, seq, updated_at
SETTINGS join_use_nulls = 1
