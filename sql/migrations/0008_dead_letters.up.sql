-- Dead letters (DeadLetter): input that could not be processed, with its raw bytes (base64) and source offset.
-- The natural id is (source_topic, partition, offset, stage): one record per stage that rejected that offset.
CREATE TABLE IF NOT EXISTS dead_letters
(
    ts             DateTime64(3, 'UTC'),
    source_topic   LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    key_b64        Nullable(String),
    raw_b64        String CODEC(ZSTD(3)),
    raw_size       UInt64,
    reason         String,
    error_type     LowCardinality(String),
    stage          LowCardinality(String),
    schema_version LowCardinality(String),
    ingested_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (source_topic, partition, offset, stage)
