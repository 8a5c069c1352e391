DROP TABLE IF EXISTS window_metrics
