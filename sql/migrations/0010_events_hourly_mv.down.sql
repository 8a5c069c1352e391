DROP VIEW IF EXISTS events_hourly_mv
