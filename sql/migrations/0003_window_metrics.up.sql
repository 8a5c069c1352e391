-- Windowed aggregates (WindowMetrics). A window is emitted early (final = false) and again when it closes; all
-- emits share window_id, which ends the sorting key, so FINAL keeps the latest emit (emitted_at is the version).
CREATE TABLE IF NOT EXISTS window_metrics
(
    window_id              String,
    window_start           DateTime64(3, 'UTC'),
    window_end             DateTime64(3, 'UTC'),
    size_s                 Float64,
    emitted_at             DateTime64(3, 'UTC'),
    final                  Bool,
    deployment             LowCardinality(String),
    model_version          LowCardinality(String),
    variant                LowCardinality(String),
    prompt_version         LowCardinality(String),
    count                  UInt64,
    error_count            UInt64,
    late_count             UInt64,
    error_rate             Float64,
    ttft_p50_ms            Nullable(Float64),
    ttft_p95_ms            Nullable(Float64),
    ttft_p99_ms            Nullable(Float64),
    tpot_p50_ms            Nullable(Float64),
    tpot_p95_ms            Nullable(Float64),
    tpot_p99_ms            Nullable(Float64),
    e2e_p50_ms             Nullable(Float64),
    e2e_p95_ms             Nullable(Float64),
    e2e_p99_ms             Nullable(Float64),
    input_tokens           UInt64,
    output_tokens          UInt64,
    cost_usd               Float64,
    toxicity_rate          Nullable(Float64),
    toxicity_mean          Nullable(Float64),
    pii_leak_rate          Nullable(Float64),
    injection_rate         Nullable(Float64),
    injection_mean         Nullable(Float64),
    injection_success_rate Nullable(Float64),
    hallucination_rate     Nullable(Float64),
    hallucination_mean     Nullable(Float64),
    hallucination_count    UInt64,
    drift_score            Nullable(Float64),
    drift_p_value          Nullable(Float64),
    sketches               Map(String, String),
    schema_version         LowCardinality(String),
    ingested_at            DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(emitted_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (deployment, model_version, variant, prompt_version, window_start, window_id)
