"""`llmwatch ingest`: the OTLP/HTTP receiver and JSON ingestion service (inference/ingest_app.py does the wiring)."""

from __future__ import annotations

import click

#: OTLP/HTTP's registered port, where exporters send by default
OTLP_HTTP_PORT = 4318


@click.command("ingest")
@click.option("--host", default=None, help="Bind address (default: LLMWATCH_GATEWAY__HOST, 127.0.0.1).")
@click.option("--port", type=int, default=OTLP_HTTP_PORT, show_default=True, help="Port (0: a free one).")
@click.option("--access-log/--no-access-log", default=False, help="uvicorn's per-request log lines.")
def ingest(host: str | None, port: int, access_log: bool) -> None:
    """Receive OTLP/HTTP traces (/v1/traces) and logs (/v1/logs), protobuf or JSON, and llmwatch JSON batches
    (/v1/events, /v1/feedback); publish every LLM call as an InferenceEvent. API keys, rate limits and the body
    limit are the gateway's settings (LLMWATCH_GATEWAY__API_KEYS, …)."""
    import uvicorn

    from llmwatch.inference.ingest_app import build_ingest, create_ingest_app
    from llmwatch.settings import get_settings

    settings = get_settings()
    bind = host or settings.gateway.host
    app = create_ingest_app(build_ingest(settings))
    click.echo(f"llmwatch ingest on http://{bind}:{port} (OTLP/HTTP /v1/traces, /v1/logs; /v1/events, /v1/feedback)")
    uvicorn.run(
        app,
        host=bind,
        port=port,
        log_level="info",
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def register(cli: click.Group) -> None:
    cli.add_command(ingest)
