-- PII leak rate per model version: share of evaluated responses holding personal data the prompt did not contain,
-- with the entity types seen in the leaking responses.
-- param hours UInt32 = 0  hours looked back from now; 0: every scored event
-- param deployment String = ''  one deployment; empty: every deployment
SELECT
    deployment,
    model_version,
    countIf(pii_leak IS NOT NULL)                         AS evaluated,
    countIf(pii_leak)                                     AS leaks,
    round(leaks / evaluated, 4)                           AS pii_leak_rate,
    arraySort(groupUniqArrayArrayIf(pii_response, pii_leak = true)) AS leaked_entity_types
FROM eval_scores FINAL
WHERE ({hours:UInt32} = 0 OR ts >= now64(3) - toIntervalHour({hours:UInt32}))
  AND ({deployment:String} = '' OR deployment = {deployment:String})
GROUP BY deployment, model_version
HAVING evaluated > 0
ORDER BY pii_leak_rate DESC, deployment, model_version
