"""`llmwatch db migrate | rollback | status | query "SQL" | ready [NAME] | serve`."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from llmwatch.errors import ClickHouseError
from llmwatch.settings import get_settings

FORMATS = click.Choice(["table", "csv", "json"])


@click.group("db")
def group() -> None:
    """ClickHouse (embedded chDB by default)."""


@group.command("migrate")
def migrate() -> None:
    """Apply pending sql/migrations in order (re-running applies nothing)."""
    from llmwatch.db.client import connect, safe_url
    from llmwatch.db.migrations import migrate as run

    settings = get_settings()
    client = connect(settings)
    try:
        report = run(client)
    finally:
        client.close()
    for mig in report.applied:
        click.echo(f"applied {mig.label}")
    if not report.applied:
        where = safe_url(settings.clickhouse_url)
        click.echo(f"nothing to apply: {report.already} migrations already applied ({where})")
    for label in report.changed:
        click.echo(f"warning: {label} changed after it was applied; add a new migration instead", err=True)


@group.command("rollback")
@click.option("--steps", type=click.IntRange(min=1), default=1, show_default=True, help="Migrations to undo.")
def rollback(steps: int) -> None:
    """Run the down file of the last applied migration(s)."""
    from llmwatch.db.client import connect
    from llmwatch.db.migrations import rollback as run

    client = connect(get_settings())
    try:
        undone = run(client, steps)
    finally:
        client.close()
    for mig in undone:
        click.echo(f"rolled back {mig.label}")
    if not undone:
        click.echo("nothing to roll back")


@group.command("status")
def status() -> None:
    """List migrations, applied or pending."""
    from llmwatch.db.client import connect
    from llmwatch.db.migrations import applied_versions, discover

    client = connect(get_settings())
    try:
        done = applied_versions(client)
    finally:
        client.close()
    for mig in discover():
        state = "applied" if mig.version in done else "pending"
        if mig.version in done and done[mig.version] != mig.checksum:
            state = "applied (file changed since)"
        click.echo(f"{mig.label:40} {state}")


def _run_query(sql: str, fmt: str, parameters: dict[str, Any] | None = None) -> None:
    from llmwatch.db.owner import open_query_client
    from llmwatch.db.render import print_table, to_csv, to_json

    client = open_query_client(get_settings())
    try:
        result = client.query(sql, parameters=parameters or None)
        columns, rows = list(result.column_names), list(result.result_rows)
    except ClickHouseError:
        raise
    except Exception as e:
        raise ClickHouseError(str(e)) from e
    finally:
        client.close()
    if fmt == "json":
        click.echo(to_json(columns, rows))
    elif fmt == "csv":
        click.echo(to_csv(columns, rows), nl=False)
    else:
        print_table(columns, rows)


@group.command("query")
@click.argument("sql")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def query(sql: str, fmt: str) -> None:
    """Run SQL and print the result (through the holder's endpoint, read-only, when a worker holds the db)."""
    _run_query(sql, fmt)


def _param(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--param")
        out[name.strip()] = value
    return out


@group.command("ready")
@click.argument("name", required=False)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A query parameter (repeatable); `llmwatch db ready` lists each query's parameters and defaults.",
)
def ready(name: str | None, fmt: str, params: tuple[str, ...]) -> None:
    """List the analysts' ready queries (sql/queries), or run one by NAME."""
    from llmwatch.db.ready import ready_queries

    queries = ready_queries()
    if name is None:
        for q in queries.values():
            params = "; ".join(f"--param {p.name}=… ({p.type}, default {p.default})" for p in q.params.values())
            click.echo(f"{q.name:40} {q.title}" + (f" [{params}]" if params else ""))
        return
    if name not in queries:
        raise click.BadParameter(f"no ready query {name!r}; known: {', '.join(queries)}", param_hint="NAME")
    q = queries[name]
    _run_query(q.sql, fmt, q.parameters(get_settings(), _param(params)))


@group.command("serve")
@click.option("--migrate/--no-migrate", "do_migrate", default=True, show_default=True)
def serve(do_migrate: bool) -> None:
    """Hold the embedded database and serve read-only queries to other processes until interrupted."""
    from llmwatch.db.client import connect
    from llmwatch.db.migrations import migrate as run
    from llmwatch.db.owner import serve_queries

    settings = get_settings()
    if not settings.clickhouse_embedded:
        raise click.UsageError("`db serve` is for the embedded database; a ClickHouse server serves itself")
    client = connect(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if do_migrate:
            run(client)
        with serve_queries(client, settings) as endpoint:
            click.echo(f"serving read-only queries at {endpoint.url} for {settings.clickhouse_url}", err=True)
            stop.wait()
    finally:
        client.close()


def register(cli: click.Group) -> None:
    cli.add_command(group)
