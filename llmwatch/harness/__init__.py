"""Running the real commands as child processes on private topics and a private chDB folder, and waiting on what
they land (tooling, not product): shared by the integration tests, the benchmarks and the demo, so they all
exercise the commands a user runs. No product module imports it."""

from .clickhouse import landed_counts, landing_report, query_rows, query_scalar
from .kafka import produce, produce_sync, read_partitions
from .processes import ChildProcess, GatewayProcess, IngestProcess, WorkerProcess, free_port, run_cli, settings_env
from .procstats import cpu_seconds, metric_sums, parse_metrics, rss_mb
from .run import delete_run_topics, private_run, run_settings
from .traffic import follow_and_produce
from .wait import HarnessError, ProcessDied, WaitTimeout, wait_for

__all__ = [
    "ChildProcess",
    "GatewayProcess",
    "HarnessError",
    "IngestProcess",
    "ProcessDied",
    "WaitTimeout",
    "WorkerProcess",
    "cpu_seconds",
    "delete_run_topics",
    "follow_and_produce",
    "free_port",
    "landed_counts",
    "landing_report",
    "metric_sums",
    "parse_metrics",
    "private_run",
    "produce",
    "produce_sync",
    "query_rows",
    "query_scalar",
    "read_partitions",
    "rss_mb",
    "run_cli",
    "run_settings",
    "settings_env",
    "wait_for",
]
