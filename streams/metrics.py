"""Prometheus metrics of a worker, served on the worker's web port at /metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class WorkerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter("llmwatch_agent_events_total", "Records consumed per agent", ["agent"], registry=r)
        self.emitted = Counter("llmwatch_agent_emitted_total", "Records produced per agent", ["agent"], registry=r)
        self.dlq = Counter("llmwatch_dlq_total", "Records sent to the DLQ", ["stage", "error_type"], registry=r)
        self.batch_size = Histogram(
            "llmwatch_agent_batch_size",
            "Records per processed batch",
            ["agent"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
            registry=r,
        )
        self.scoring_seconds = Histogram(
            "llmwatch_scoring_seconds",
            "Time to score a batch: decoding, evaluators, encoding (and the scoring process round trip)",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.scoring_restarts = Counter(
            "llmwatch_scoring_process_restarts_total", "Times the scoring process died and was restarted", registry=r
        )
        self.sink_rows = Counter("llmwatch_sink_rows_total", "Rows written to ClickHouse", ["table"], registry=r)
        self.sink_retries = Counter(
            "llmwatch_sink_retries_total", "Insert attempts that failed and were retried", registry=r
        )
        self.sink_lag = Gauge(
            "llmwatch_sink_lag_seconds", "Now minus the newest event time written", ["table"], registry=r
        )
        self.consumer_lag = Gauge(
            "llmwatch_consumer_lag",
            "Highwater minus committed offset per consumer group (agent role) and topic partition",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.assigned_partitions = Gauge(
            "llmwatch_assigned_partitions",
            "Partitions this process holds per consumer group (agent role); 0 in a judge, controller or alerter "
            "group: this one stands by while another worker's is active",
            ["group"],
            registry=r,
        )
        self.rebalances = Counter(
            "llmwatch_rebalances_total", "Partition assignments received per consumer group", ["group"], registry=r
        )
        self.open_windows = Gauge("llmwatch_open_windows", "Windows not yet closed", registry=r)
        self.held_events = Gauge("llmwatch_held_events", "Events whose offsets wait for a window to close", registry=r)
        self.stuck_batches = Counter(
            "llmwatch_stuck_batches_total",
            "Batches that failed and hold their offsets until a restart",
            ["agent"],
            registry=r,
        )
        self.late_events = Counter(
            "llmwatch_late_events_total", "Events that arrived after their window closed", ["outcome"], registry=r
        )
