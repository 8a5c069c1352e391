-- User feedback per model version: thumbs-up share (of thumbs given) and mean normalised score.
-- The model version comes from the feedback or, when it carries none, from the event it rates.
-- param hours UInt32 = 0  hours looked back from now; 0: all feedback
-- param deployment String = ''  one deployment; empty: every deployment
SELECT
    f.deployment                                                    AS deployment,
    coalesce(f.model_version, e.model_version)                      AS model_version,
    count()                                                         AS feedback,
    countIf(f.thumbs IS NOT NULL)                                   AS thumbs_given,
    round(countIf(f.thumbs = 1) / nullIf(thumbs_given, 0), 4)        AS thumbs_up_rate,
    round(avg(f.score), 4)                                          AS mean_score
FROM feedback AS f FINAL
LEFT JOIN (SELECT event_id, model_version FROM inference_events FINAL) AS e ON e.event_id = f.event_id
WHERE ({hours:UInt32} = 0 OR f.ts >= now64(3) - toIntervalHour({hours:UInt32}))
  AND ({deployment:String} = '' OR f.deployment = {deployment:String})
GROUP BY deployment, model_version
ORDER BY deployment, model_version
SETTINGS join_use_nulls = 1
