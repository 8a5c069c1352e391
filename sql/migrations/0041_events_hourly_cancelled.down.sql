ALTER TABLE events_hourly DROP COLUMN IF EXISTS cancelled
