-- Per-event evaluation scores (EvalScores). One row per event_id; a re-score (new evaluator version) replaces the
-- old one because scored_at is the version column. NULL score = the evaluator did not apply or was off.
CREATE TABLE IF NOT EXISTS eval_scores
(
    event_id          String,
    ts                DateTime64(3, 'UTC'),
    scored_at         DateTime64(3, 'UTC'),
    deployment        LowCardinality(String),
    model_version     LowCardinality(String),
    variant           LowCardinality(String),
    experiment        LowCardinality(Nullable(String)),
    prompt_version    LowCardinality(String),
    status            LowCardinality(String),
    ttft_ms           Nullable(Float64),
    tpot_ms           Nullable(Float64),
    e2e_ms            Nullable(Float64),
    input_tokens      UInt32,
    output_tokens     UInt32,
    cost_usd          Nullable(Float64),
    toxicity_prompt   Nullable(Float64),
    toxicity_response Nullable(Float64),
    pii_prompt        Array(LowCardinality(String)),
    pii_response      Array(LowCardinality(String)),
    pii_leak          Nullable(Bool),
    injection         Nullable(Float64),
    injection_success Nullable(Bool),
    hallucination     Nullable(Float64),
    evaluators        Map(String, String),
    redacted_prompt   Nullable(String) CODEC(ZSTD(3)),
    redacted_response Nullable(String) CODEC(ZSTD(3)),
    source_partition  Nullable(UInt32),
    source_offset     Nullable(UInt64),
    schema_version    LowCardinality(String),
    ingested_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (deployment, model_version, ts, event_id)
SETTINGS non_replicated_deduplication_window = 1000
