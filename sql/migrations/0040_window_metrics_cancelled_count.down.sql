ALTER TABLE window_metrics DROP COLUMN IF EXISTS cancelled_count
