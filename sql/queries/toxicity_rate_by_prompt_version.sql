-- Toxicity rate by prompt version: share of scored responses (and prompts) at or above the threshold.
-- Edit `threshold` to match LLMWATCH_EVAL__TOXICITY_THRESHOLD. Unscored events (evaluator off) are left out.
WITH 0.5 AS threshold
SELECT
    deployment,
    prompt_version,
    countIf(toxicity_response IS NOT NULL)                                     AS scored,
    countIf(toxicity_response >= threshold)                                    AS toxic_responses,
    round(toxic_responses / scored, 4)                                         AS response_toxicity_rate,
    round(countIf(toxicity_prompt >= threshold) / nullIf(countIf(toxicity_prompt IS NOT NULL), 0), 4) AS prompt_toxicity_rate,
    round(avg(toxicity_response), 4)                                           AS mean_response_toxicity
FROM eval_scores FINAL
GROUP BY deployment, prompt_version
HAVING scored > 0
ORDER BY response_toxicity_rate DESC, deployment, prompt_version
