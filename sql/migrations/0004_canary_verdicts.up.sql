-- Canary judge verdicts (CanaryVerdict). Per-metric results live twice: as Nested arrays (metrics.metric,
-- metrics.result, ... one element per metric, for ARRAY JOIN) and as metrics_json (the exact payload list).
CREATE TABLE IF NOT EXISTS canary_verdicts
(
    verdict_id       String,
    ts               DateTime64(3, 'UTC'),
    deployment       LowCardinality(String),
    baseline_version LowCardinality(String),
    canary_version   LowCardinality(String),
    judge            LowCardinality(String),
    result           LowCardinality(String),
    reason           String,
    window_start     DateTime64(3, 'UTC'),
    window_end       DateTime64(3, 'UTC'),
    baseline_n       UInt64,
    canary_n         UInt64,
    canary_weight    Nullable(Float64),
    metrics Nested
    (
        metric         String,
        result         String,
        direction      String,
        critical       Bool,
        margin         Float64,
        effect_size    Nullable(Float64),
        statistic      Nullable(Float64),
        p_value        Nullable(Float64),
        baseline_n     UInt64,
        canary_n       UInt64,
        baseline_value Nullable(Float64),
        canary_value   Nullable(Float64),
        reason         String
    ),
    metrics_json     String,
    schema_version   LowCardinality(String),
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (deployment, ts, verdict_id)
