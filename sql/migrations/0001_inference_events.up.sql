-- Raw inference events, one row per InferenceEvent (prompt/response already redacted upstream when redaction is on).
-- At-least-once input: ReplacingMergeTree keeps one row per sorting key, and the key ends with event_id, so a
-- redelivered event collapses at merge time; read with FINAL (or argMax) for exact counts. ingested_at is the
-- version: the latest copy wins. non_replicated_deduplication_window also drops a retried identical insert block
-- at once (and, with deduplicate_blocks_in_dependent_materialized_views=1, its materialized-view rows).
CREATE TABLE IF NOT EXISTS inference_events
(
    event_id       String,
    ts             DateTime64(3, 'UTC'),
    deployment     LowCardinality(String),
    model          LowCardinality(String),
    model_version  LowCardinality(String),
    variant        LowCardinality(String),
    experiment     LowCardinality(Nullable(String)),
    prompt_version LowCardinality(String),
    user_id        Nullable(String),
    session_id     Nullable(String),
    prompt         String CODEC(ZSTD(3)),
    response       String CODEC(ZSTD(3)),
    context        Array(String) CODEC(ZSTD(3)),
    input_tokens   UInt32,
    output_tokens  UInt32,
    ttft_ms        Nullable(Float64),
    tpot_ms        Nullable(Float64),
    e2e_ms         Nullable(Float64),
    status         LowCardinality(String),
    error          Nullable(String),
    finish_reason  LowCardinality(Nullable(String)),
    engine         LowCardinality(String),
    simulated      Bool,
    source         LowCardinality(String),
    cost_usd       Nullable(Float64),
    attributes     Map(String, String),
    schema_version LowCardinality(String),
    ingested_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (deployment, model_version, ts, event_id)
SETTINGS non_replicated_deduplication_window = 1000
