-- Toxicity rate by prompt version: share of scored responses (and prompts) at or above the threshold.
-- Unscored events (evaluator off, or not sampled) are left out. The threshold defaults to
-- LLMWATCH_EVAL__TOXICITY_THRESHOLD, the one windows, the judge and alerts use (evaluators/metrics.py).
-- param toxicity_threshold Float64 = eval.toxicity_threshold  toxicity score at or above which a text counts
-- param hours UInt32 = 0  hours looked back from now; 0: every scored event
-- param deployment String = ''  one deployment; empty: every deployment
SELECT
    deployment,
    prompt_version,
    countIf(toxicity_response IS NOT NULL)                                     AS scored,
    countIf(toxicity_response >= {toxicity_threshold:Float64})                 AS toxic_responses,
    round(toxic_responses / scored, 4)                                         AS response_toxicity_rate,
    round(countIf(toxicity_prompt >= {toxicity_threshold:Float64}) / nullIf(countIf(toxicity_prompt IS NOT NULL), 0), 4) AS prompt_toxicity_rate,
    round(avg(toxicity_response), 4)                                           AS mean_response_toxicity
FROM eval_scores FINAL
WHERE ({hours:UInt32} = 0 OR ts >= now64(3) - toIntervalHour({hours:UInt32}))
  AND ({deployment:String} = '' OR deployment = {deployment:String})
GROUP BY deployment, prompt_version
HAVING scored > 0
ORDER BY response_toxicity_rate DESC, deployment, prompt_version
