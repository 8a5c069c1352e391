"""The Faust apps: declared from settings, nothing else. Agents live in their own modules and are installed
explicitly by `build_worker` (streams/worker.py), one app per agent role: a Faust app is one Kafka consumer
group, and each role needs a group of its own (see streams/worker.py)."""

from __future__ import annotations

from typing import Any

import faust

from llmwatch.schemas import topic_registry
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES
from llmwatch.settings import Settings

from .patches import Transport, assignor_setting


def _credentials(settings: Settings) -> Any:
    kwargs = settings.kafka_client_kwargs()
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=kwargs.get("ssl_context"),
        )
    if protocol == "SSL":
        return faust.SSLCredentials(kwargs["ssl_context"])
    return None


def create_app(
    settings: Settings, *, app_id: str | None = None, web: bool = True, single_owner: bool = False
) -> faust.App:
    """A Faust app, i.e. one consumer group `app_id` (default: `worker.app_id`). `web`: it serves the worker's
    HTTP page (one app per process does). `single_owner`: every partition of the group goes to one member
    (streams/patches.py, SingleOwnerAssignor)."""
    w = settings.worker
    datadir = settings.data_dir / "faust" / (app_id or w.app_id)
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id or w.app_id,
        broker=[f"kafka://{host}" for host in settings.bootstrap_servers],
        broker_credentials=_credentials(settings),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=False,  # topics are created by `llmwatch kafka up` / ensure_topics
        topic_disable_leader=True,  # no leader-only timers: every worker closes its own windows
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=w.commit_interval_s,
        stream_wait_empty=False,  # held offsets are replayed, never waited for
        producer_acks=-1,
        producer_compression_type=w.compression_type,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        producer_max_batch_size=w.producer_batch_bytes,
        producer_linger_ms=w.producer_linger_ms,
        web_enabled=web,
        web_host=w.web_host,
        web_port=w.web_port,
        web_in_thread=False,
        datadir=str(datadir),
        worker_redirect_stdouts=False,
        store="memory://",
        consumer_max_fetch_size=w.fetch_max_bytes,
        stream_buffer_maxsize=w.stream_buffer,
        # failover in seconds: a dead member's partitions move after the session timeout (Faust's default: 60 s)
        broker_session_timeout=w.session_timeout_s,
        broker_heartbeat_interval=w.heartbeat_interval_s,
        broker_rebalance_timeout=w.rebalance_timeout_s,
        **assignor_setting(single_owner),
    )
    app.transport = Transport(app.conf.broker_consumer, app)  # Faust's, with a cheaper record hand-off
    app.transport.fetch_max_wait_ms = w.fetch_max_wait_ms
    return app


def declare_topics(app: faust.App, settings: Settings) -> dict[str, faust.TopicT]:
    """role → Faust topic, raw bytes in and out (agents decode themselves, so bad bytes reach the DLQ)."""
    return {
        role: app.topic(
            spec.name,
            key_type=bytes,
            value_type=bytes,
            partitions=spec.partitions,
            key_serializer="raw",
            value_serializer="raw",
        )
        for role, spec in topic_registry(settings).items()
    }
