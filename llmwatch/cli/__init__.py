"""The `llmwatch` command. Each command group lives in its own module here and stays thin:
parse options, call the library, print."""

from __future__ import annotations

import logging
import sys

import click

from llmwatch import __version__
from llmwatch.errors import LlmwatchError
from llmwatch.logfilters import install_payload_filters, install_rebalance_filters, install_reconnect_filters

from . import bench, canary, db, demo, evalcmd, ingest, kafka, loadgen, rollout, schemas, score, serve, settings, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="llmwatch")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def cli(verbose: int) -> None:
    """Streaming monitoring and evaluation for LLMs in production."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    install_payload_filters()  # every command: Kafka clients would log raw records at DEBUG
    install_reconnect_filters()  # a broker outage must not flood the log (aiokafka retries without back-off)
    install_rebalance_filters()  # a normal rebalance must not look like a failure


for module in (
    kafka,
    db,
    schemas,
    settings,
    serve,
    ingest,
    loadgen,
    worker,
    rollout,
    canary,
    score,
    evalcmd,
    demo,
    bench,
):
    module.register(cli)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except LlmwatchError as e:
        click.echo(f"llmwatch: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
