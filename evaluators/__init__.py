"""Pure, batch-first evaluators: no Kafka or ClickHouse imports here."""
