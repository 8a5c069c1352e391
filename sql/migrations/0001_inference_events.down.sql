DROP TABLE IF EXISTS inference_events
