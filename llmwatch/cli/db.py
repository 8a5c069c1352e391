"""`llmwatch db migrate | rollback | status | query "SQL" | ready [NAME] | serve`."""

from __future__ import annotations

import signal
import textwrap
import threading
from typing import Any

import click

from llmwatch.errors import ClickHouseError
from llmwatch.settings import get_settings

FORMATS = click.Choice(["auto", "table", "vertical", "csv", "tsv", "json", "jsonl"])
FORMAT_HELP = (
    "auto: a table when it fits the terminal, else one record per block (vertical); table and vertical force one; "
    "csv, tsv (TSVWithNames) and json (ClickHouse's JSON: meta, data, rows) name the columns even with no row; "
    "jsonl: one object per row."
)


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
    from llmwatch.db.queries import described
    from llmwatch.db.render import print_auto, print_table, print_vertical, to_csv, to_json, to_jsonl, to_tsv

    client = open_query_client(get_settings())
    types: list[str] | None = None
    try:
        result = client.query(sql, parameters=parameters or None)
        columns, rows = list(result.column_names), list(result.result_rows)
        if not columns or fmt == "json":
            try:  # an empty result comes back without column names (chDB): the query's plan has them
                names_types = described(client, sql, parameters)
            except Exception:  # not a query (SHOW, DESCRIBE …): nothing to describe
                names_types = []
            if names_types and (not columns or len(names_types) == len(columns)):
                columns = columns or [n for n, _ in names_types]
                types = [t for _, t in names_types]
    except ClickHouseError:
        raise
    except Exception as e:
        raise ClickHouseError(str(e)) from e
    finally:
        client.close()
    if fmt == "json":
        click.echo(to_json(columns, rows, types))
    elif fmt == "jsonl":
        click.echo(to_jsonl(columns, rows), nl=False)
    elif fmt == "csv":
        click.echo(to_csv(columns, rows), nl=False)
    elif fmt == "tsv":
        click.echo(to_tsv(columns, rows), nl=False)
    elif fmt == "vertical":
        print_vertical(columns, rows)
    elif fmt == "table":
        print_table(columns, rows)
    else:
        print_auto(columns, rows)


@group.command("query")
@click.argument("sql")
@click.option("--format", "fmt", type=FORMATS, default="auto", show_default=True, help=FORMAT_HELP)
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
@click.option("--format", "fmt", type=FORMATS, default="auto", show_default=True, help=FORMAT_HELP)
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
            click.echo(q.name)
            for line in textwrap.wrap(q.title, 100):
                click.secho(f"    {line}", bold=True)
            for line in textwrap.wrap(q.description, 100):
                click.echo(f"    {line}")
            for p in q.params.values():
                head = f"    --param {p.name}=…  {p.type}, default {p.default}" + (f": {p.about}" if p.about else "")
                click.echo(textwrap.fill(head, 104, subsequent_indent=" " * 8))
            click.echo()
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
