"""`llmwatch serve`: the OpenAI-compatible gateway (inference/app.py does the wiring)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("serve")
@click.option(
    "--engine",
    type=click.Choice(["simulated", "transformers", "vllm", "openai"]),
    default=None,
    help="Engine kind (default: LLMWATCH_GATEWAY__ENGINE, else simulated).",
)
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Local HF model dir (transformers, vllm).")
@click.option("--upstream", default=None, help="Base URL of an OpenAI-compatible server (openai engine).")
@click.option("--deployment", default=None, help="Deployment name clients put in `model` (default: demo).")
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML/JSON file with [[engines]] and [[deployments]]; overrides --engine/--model/--upstream.",
)
@click.option("--no-publish", is_flag=True, help="Do not publish events to Kafka (no /ready Kafka check).")
@click.option(
    "--ingest/--no-ingest",
    default=None,
    help="Also serve the ingest routes (OTLP /v1/traces, /v1/logs; /v1/events, /v1/feedback); "
    "default: LLMWATCH_GATEWAY__INGEST.",
)
@click.option("--access-log/--no-access-log", default=False, help="uvicorn's per-request log lines.")
def serve(
    engine: str | None,
    model: Path | None,
    upstream: str | None,
    deployment: str | None,
    host: str | None,
    port: int | None,
    config: Path | None,
    no_publish: bool,
    ingest: bool | None,
    access_log: bool,
) -> None:
    """OpenAI-compatible inference gateway: /v1/chat/completions, /v1/completions, /health, /ready, /metrics."""
    import uvicorn

    from llmwatch.inference.app import build_gateway, create_app
    from llmwatch.settings import get_settings

    settings = get_settings()
    overrides = {
        "engine": engine,
        "model": model,
        "upstream": upstream,
        "deployment": deployment,
        "host": host,
        "port": port,
        "config": config,
        "ingest": ingest,
    }
    gateway_settings = settings.gateway.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    settings = settings.model_copy(update={"gateway": gateway_settings})
    app = create_app(build_gateway(settings, publish=not no_publish))
    click.echo(
        f"llmwatch gateway on http://{gateway_settings.host}:{gateway_settings.port} "
        f"(engine {gateway_settings.engine if config is None else 'from ' + str(config)})",
        err=True,
    )
    uvicorn.run(
        app,
        host=gateway_settings.host,
        port=gateway_settings.port,
        log_level="info",
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def register(cli: click.Group) -> None:
    cli.add_command(serve)
