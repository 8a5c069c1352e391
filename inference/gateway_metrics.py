"""The gateway's Prometheus metrics, in a registry of its own (several gateways can live in one test process).

Labels are bounded: deployment and model_version come from the config, never from the client (an unknown
deployment is counted under "-"). Publisher figures are read at scrape time, so they cost nothing per request.
Nothing here carries secrets or texts: API keys appear only as their short ids (security.key_id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_TPOT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


class _PublisherCollector(Collector):
    """Queue depth and publish outcomes of the event publisher, read when Prometheus scrapes."""

    def __init__(self, publisher: Callable[[], Any]) -> None:
        self._publisher = publisher

    def collect(self) -> Iterator[Metric]:
        publisher = self._publisher()
        if publisher is None:
            return
        stats = publisher.stats
        depth = GaugeMetricFamily("llmwatch_gateway_publish_queue_depth", "Events waiting to be sent to Kafka.")
        depth.add_metric([], float(_queue_depth(publisher)))
        yield depth
        connected = GaugeMetricFamily("llmwatch_gateway_publish_connected", "1 while the publisher reaches Kafka.")
        connected.add_metric([], 1.0 if publisher.connected else 0.0)
        yield connected
        for name, doc in (
            ("sent", "Events Kafka acknowledged."),
            ("failed", "Events whose send failed (after retries)."),
            ("dropped", "Events dropped because the buffer was full."),
        ):
            family = CounterMetricFamily(f"llmwatch_gateway_publish_{name}", doc)
            family.add_metric([], float(getattr(stats, name, 0) or 0))
            yield family


def _queue_depth(publisher: Any) -> int:
    for attr in ("queue_depth", "pending"):
        value = getattr(publisher, attr, None)
        if isinstance(value, int):
            return value
    return int(getattr(publisher.stats, "queued", 0) or 0)


@dataclass(frozen=True)
class _Children:
    """The labelled series one (endpoint, deployment, version, variant, status, stream) touches."""

    requests: Any
    latency: Any
    ttft: Any
    tpot: Any
    input_tokens: Any
    output_tokens: Any


class GatewayMetrics:
    """Request, latency and token metrics of one gateway (and the ingest routes' record counts)."""

    def __init__(self, publisher: Callable[[], Any] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ingest = Counter(
            "llmwatch_ingest_records",
            "Ingested records by signal (traces, logs, events, feedback) and outcome (accepted: published; not_llm: "
            "spans that are not LLM calls, dropped; rejected: LLM spans that are not valid events; invalid: bodies "
            "refused with a 400; busy: refused with a 503 for room).",
            ["signal", "outcome"],
            registry=r,
        )
        self.requests = Counter(
            "llmwatch_gateway_requests",
            "Requests by outcome (ok, error, cancelled, invalid, not_found, unavailable).",
            ["endpoint", "deployment", "variant", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "llmwatch_gateway_request_duration_seconds",
            "Request duration from arrival to the last byte produced.",
            ["endpoint", "deployment", "variant", "stream"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "llmwatch_gateway_time_to_first_token_seconds",
            "Time to first token.",
            ["deployment", "model_version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "llmwatch_gateway_time_per_output_token_seconds",
            "Time per output token after the first.",
            ["deployment", "model_version"],
            buckets=_TPOT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "llmwatch_gateway_tokens",
            "Tokens in prompts (input) and responses (output).",
            ["deployment", "model_version", "kind"],
            registry=r,
        )
        self._cache: dict[tuple[str, str, str, str, str, bool], _Children] = {}
        self.in_flight = Gauge("llmwatch_gateway_requests_in_flight", "Requests being served.", registry=r)
        self.denials = Counter(
            "llmwatch_gateway_denied",
            "Requests refused before parsing (unauthorized, rate_limited), by API key id ('-': no known key).",
            ["reason", "key_id"],
            registry=r,
        )
        if publisher is not None:
            r.register(_PublisherCollector(publisher))

    def ingested(self, signal: str, outcome: str, n: int) -> None:
        if n:
            self.ingest.labels(signal, outcome).inc(n)

    def rejected(self, endpoint: str, status: str, deployment: str = "-") -> None:
        self.requests.labels(endpoint, deployment, "-", status).inc()

    def denied(self, reason: str, key_id: str) -> None:
        """A request refused by the guard; `key_id` is a configured key's id or '-', so the labels stay bounded."""
        self.denials.labels(reason, key_id).inc()

    def finished(
        self,
        *,
        endpoint: str,
        deployment: str,
        model_version: str,
        variant: str,
        status: str,
        stream: bool,
        e2e_ms: float | None,
        ttft_ms: float | None,
        tpot_ms: float | None,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        c = self._children(endpoint, deployment, model_version, variant, status, stream)
        c.requests.inc()
        if e2e_ms is not None:
            c.latency.observe(e2e_ms / 1000)
        if ttft_ms is not None:
            c.ttft.observe(ttft_ms / 1000)
        if tpot_ms is not None:
            c.tpot.observe(tpot_ms / 1000)
        if input_tokens:
            c.input_tokens.inc(input_tokens)
        if output_tokens:
            c.output_tokens.inc(output_tokens)

    def _children(
        self, endpoint: str, deployment: str, model_version: str, variant: str, status: str, stream: bool
    ) -> _Children:
        # `labels()` hashes and locks on every call; the label sets are few (config-bound), so resolve them once.
        key = (endpoint, deployment, model_version, variant, status, stream)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _Children(
                requests=self.requests.labels(endpoint, deployment, variant, status),
                latency=self.latency.labels(endpoint, deployment, variant, "true" if stream else "false"),
                ttft=self.ttft.labels(deployment, model_version),
                tpot=self.tpot.labels(deployment, model_version),
                input_tokens=self.tokens.labels(deployment, model_version, "input"),
                output_tokens=self.tokens.labels(deployment, model_version, "output"),
            )
        return found

    def render(self, *extra: CollectorRegistry) -> bytes:
        """Exposition text of this gateway's registry followed by `extra` ones (e.g. vLLM's, in the default)."""
        return b"".join(generate_latest(reg) for reg in (self.registry, *extra))
