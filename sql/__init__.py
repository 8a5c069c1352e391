"""ClickHouse migrations (sql/migrations) and analysts' ready queries (sql/queries), shipped as package data."""
