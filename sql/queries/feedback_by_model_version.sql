-- User feedback per model version: thumbs-up share (of thumbs given) and mean normalised score.
-- The model version comes from the feedback or, when it carries none, from the event it rates.
SELECT
    f.deployment                                                    AS deployment,
    coalesce(f.model_version, e.model_version)                      AS model_version,
    count()                                                         AS feedback,
    countIf(f.thumbs IS NOT NULL)                                   AS thumbs_given,
    round(countIf(f.thumbs = 1) / nullIf(thumbs_given, 0), 4)        AS thumbs_up_rate,
    round(avg(f.score), 4)                                          AS mean_score
FROM feedback AS f FINAL
LEFT JOIN (SELECT event_id, model_version FROM inference_events FINAL) AS e ON e.event_id = f.event_id
GROUP BY deployment, model_version
ORDER BY deployment, model_version
SETTINGS join_use_nulls = 1
