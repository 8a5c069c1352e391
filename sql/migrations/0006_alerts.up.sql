-- Alerts the alerter raised or resolved (Alert); one row per alert_id.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id       String,
    ts             DateTime64(3, 'UTC'),
    deployment     LowCardinality(String),
    rule           LowCardinality(String),
    severity       LowCardinality(String),
    status         LowCardinality(String),
    fingerprint    String,
    summary        String,
    description    String,
    labels         Map(String, String),
    verdict_id     Nullable(String),
    starts_at      DateTime64(3, 'UTC'),
    ends_at        Nullable(DateTime64(3, 'UTC')),
    schema_version LowCardinality(String),
    ingested_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (deployment, ts, alert_id)
