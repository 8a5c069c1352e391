"""What a running child costs and says: CPU and memory of its process tree, and its Prometheus /metrics page."""

from __future__ import annotations

from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families


def _process_tree(pid: int) -> list[Any]:
    """The process and all its descendants (a worker and its scoring process); [] once it is gone."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU of a process and its descendants, None once it is gone."""
    procs = _process_tree(pid)
    if not procs:
        return None
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:  # a child that ended meanwhile
            continue
        total += t.user + t.system
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, MiB (0 once it is gone)."""
    total = 0
    for p in _process_tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def metric_sums(text: str, name: str, by: str | None = None) -> dict[str | None, float]:
    """Sum of every sample of `name`, grouped by the label `by` (e.g. consumer lag by topic over its partitions):
    parse_metrics keeps only the first label, which would let partitions overwrite each other."""
    out: dict[str | None, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                key = sample.labels.get(by) if by else None
                out[key] = out.get(key, 0.0) + sample.value
    return out


def parse_metrics(text: str) -> dict[tuple[str, str | None, str | None], float]:
    """Prometheus text → {(name, first label, its value): value} (enough for the tests' checks)."""
    out: dict[tuple[str, str | None, str | None], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label, value = next(iter(sample.labels.items()), (None, None))
            out[(sample.name, label, value)] = sample.value
    return out
