-- Feeds events_hourly from every block inserted into inference_events.
--
-- Replay semantics (read before trusting the sums):
-- * A materialized view sees each INSERTED BLOCK, not the table: ReplacingMergeTree dedup in inference_events
--   happens later, at merge time, and never retracts rows already aggregated here.
-- * events / errors use uniqExact(event_id): a redelivered or replayed event is counted once, whatever the batching.
-- * A retried insert of the IDENTICAL block (same rows, same order: the sink's retry) is dropped by the block
--   dedup window of both tables when the insert runs with deduplicate_blocks_in_dependent_materialized_views=1
--   (llmwatch.db.client.connect sets it), so sums and quantiles stay exact too.
-- * A replay with DIFFERENT batch boundaries (a consumer rewound its offsets) adds those rows again to the token
--   and cost sums and to the latency quantile samples. For exact numbers after such a replay, query
--   inference_events FINAL, or rebuild this roll-up:
--     TRUNCATE TABLE events_hourly;
--     INSERT INTO events_hourly SELECT <the SELECT below> FROM inference_events FINAL GROUP BY ...;
-- * Created without POPULATE: rows inserted before this view existed are not rolled up (rebuild as above).
CREATE MATERIALIZED VIEW IF NOT EXISTS events_hourly_mv TO events_hourly AS
SELECT
    toStartOfHour(ts)                                   AS hour,
    deployment,
    model_version,
    variant,
    uniqExactState(event_id)                            AS events,
    uniqExactIfState(event_id, status != 'ok')          AS errors,
    quantilesState(0.5, 0.95, 0.99)(ttft_ms)            AS ttft_ms,
    quantilesState(0.5, 0.95, 0.99)(tpot_ms)            AS tpot_ms,
    quantilesState(0.5, 0.95, 0.99)(e2e_ms)             AS e2e_ms,
    sumState(toUInt64(input_tokens))                    AS input_tokens,
    sumState(toUInt64(output_tokens))                   AS output_tokens,
    sumState(toFloat64(ifNull(cost_usd, 0)))            AS cost_usd
FROM inference_events
GROUP BY hour, deployment, model_version, variant
