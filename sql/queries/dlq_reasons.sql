-- Dead letters by source topic, stage and error type: how many, since when, and one sample reason each.
SELECT
    source_topic,
    stage,
    error_type,
    count()                     AS records,
    sum(raw_size)               AS raw_bytes,
    min(ts)                     AS first_seen,
    max(ts)                     AS last_seen,
    argMax(reason, ts)          AS latest_reason
FROM dead_letters FINAL
GROUP BY source_topic, stage, error_type
ORDER BY records DESC, source_topic, stage, error_type
