-- Hourly roll-up of inference_events per deployment, model version and variant, as mergeable aggregate states
-- (filled by events_hourly_mv, read through events_hourly_v with -Merge). Events are counted with
-- uniqExact(event_id), so a redelivered event is counted once; see 0010 for what replays do to the other columns.
CREATE TABLE IF NOT EXISTS events_hourly
(
    hour          DateTime('UTC'),
    deployment    LowCardinality(String),
    model_version LowCardinality(String),
    variant       LowCardinality(String),
    events        AggregateFunction(uniqExact, String),
    errors        AggregateFunction(uniqExactIf, String, UInt8),
    ttft_ms       AggregateFunction(quantiles(0.5, 0.95, 0.99), Nullable(Float64)),
    tpot_ms       AggregateFunction(quantiles(0.5, 0.95, 0.99), Nullable(Float64)),
    e2e_ms        AggregateFunction(quantiles(0.5, 0.95, 0.99), Nullable(Float64)),
    input_tokens  AggregateFunction(sum, UInt64),
    output_tokens AggregateFunction(sum, UInt64),
    cost_usd      AggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (deployment, model_version, variant, hour)
SETTINGS non_replicated_deduplication_window = 1000
