-- User feedback (Feedback) linked to inference_events by event_id; one row per feedback_id.
CREATE TABLE IF NOT EXISTS feedback
(
    feedback_id    String,
    event_id       String,
    ts             DateTime64(3, 'UTC'),
    deployment     LowCardinality(String),
    model_version  LowCardinality(Nullable(String)),
    variant        LowCardinality(Nullable(String)),
    experiment     LowCardinality(Nullable(String)),
    user_id        Nullable(String),
    thumbs         Nullable(Int8),
    score          Nullable(Float64),
    comment        Nullable(String),
    schema_version LowCardinality(String),
    ingested_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (deployment, ts, feedback_id)
