-- Cancelled requests per hour (uniqExact of event_id), so the hourly error rate has the same denominator as every
-- other error rate: requests that finished, ok or error (evaluators/metrics.py).
ALTER TABLE events_hourly ADD COLUMN IF NOT EXISTS cancelled AggregateFunction(uniqExactIf, String, UInt8) AFTER errors
