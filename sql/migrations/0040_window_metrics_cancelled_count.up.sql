-- Cancelled requests of a window: counted in `count`, left out of the error rate's denominator
-- (one definition per metric: evaluators/metrics.py). Windows emitted before this migration read 0.
ALTER TABLE window_metrics ADD COLUMN IF NOT EXISTS cancelled_count UInt64 DEFAULT 0 AFTER error_count
