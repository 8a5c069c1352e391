DROP TABLE IF EXISTS traffic_weights
