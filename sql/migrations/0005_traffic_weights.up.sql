-- Audit of every traffic weight change (TrafficWeights), with the verdict or command that caused it.
-- The natural id is (deployment, seq, updated_at): a replayed record collapses, two moves never do.
CREATE TABLE IF NOT EXISTS traffic_weights
(
    deployment       LowCardinality(String),
    seq              UInt64,
    updated_at       DateTime64(3, 'UTC'),
    weights          Map(String, Float64),
    baseline_version LowCardinality(String),
    canary_version   LowCardinality(Nullable(String)),
    state            LowCardinality(String),
    step_index       UInt32,
    reason           String,
    verdict_id       Nullable(String),
    command_id       Nullable(String),
    experiment       Nullable(String),
    schema_version   LowCardinality(String),
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (deployment, seq, updated_at)
