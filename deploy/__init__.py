"""Deployment assets (local Kafka provisioning, Kubernetes, Grafana, Prometheus), shipped as package data."""
