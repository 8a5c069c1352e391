-- Dead letters by source topic, stage and error type: how many, how many bytes, since when, and every distinct
-- reason with its count, the most frequent first (one per line in the vertical view).
-- param hours UInt32 = 0  hours looked back from now; 0: every dead letter
WITH by_reason AS
(
    SELECT source_topic, stage, error_type, reason, count() AS n, sum(raw_size) AS bytes, min(ts) AS first, max(ts) AS last
    FROM dead_letters FINAL
    WHERE {hours:UInt32} = 0 OR ts >= now64(3) - toIntervalHour({hours:UInt32})
    GROUP BY source_topic, stage, error_type, reason
)
SELECT
    source_topic,
    stage,
    error_type,
    sum(n)                                                  AS records,
    sum(bytes)                                              AS raw_bytes,
    min(first)                                              AS first_seen,
    max(last)                                               AS last_seen,
    count()                                                 AS distinct_reasons,
    arrayStringConcat(
        arrayMap(x -> concat(toString(x.1), ' × ', x.2), arrayReverseSort(x -> (x.1, x.3), groupArray((n, reason, last)))),
        '\n'
    )                                                       AS reasons
FROM by_reason
GROUP BY source_topic, stage, error_type
ORDER BY records DESC, source_topic, stage, error_type
