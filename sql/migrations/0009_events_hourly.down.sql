DROP TABLE IF EXISTS events_hourly
