"""`llmwatch score FILE.jsonl`: offline scoring with the evaluators (logic in evaluators/offline.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

#: Files at least this big get a progress bar on stderr unless --no-progress.
LARGE_BYTES = 1 << 20


@contextmanager
def _input(path: Path) -> Iterator[IO[bytes]]:
    if str(path) == "-":
        yield sys.stdin.buffer
    else:
        with path.open("rb") as f:
            yield f


@contextmanager
def _output(path: Path) -> Iterator[IO[str]]:
    if str(path) == "-":
        yield sys.stdout
    else:
        with path.open("w", encoding="utf-8") as f:
            yield f


@contextmanager
def _progress(show: bool, total: int | None) -> Iterator[Callable[[int], None] | None]:
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("scoring"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("scoring", total=total)
        yield lambda n: bar.advance(task, n)


@click.command("score")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default="-",
    help="Default: stdout.",
)
@click.option("--evaluators", "ids", default=None, help="Comma-separated ids (default: LLMWATCH_EVAL__ENABLED).")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=64, show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: for files ≥ 1 MiB).")
def score(file: Path, output: Path, ids: str | None, batch_size: int, progress: bool | None) -> None:
    """Score JSON lines (`prompt`, `response`, optional `context`, optional `system`) into one JSON line of scores.

    Each output line has the scores, `thresholds` (the configured threshold per thresholded score) and `flags`
    (true when the score is >= its threshold, false below, null without a score). `system` is the operator's system
    prompt: scored for toxicity with the prompt, never as an injection.

    Bad lines get an error record ({"line": N, "error": ...}) and make the exit status non-zero.
    """
    from llmwatch.evaluators import offline
    from llmwatch.settings import get_settings

    chosen = [i.strip() for i in ids.split(",") if i.strip()] if ids else None
    settings = get_settings()
    suite = offline.load_evaluators(settings, chosen)
    thresholds = offline.thresholds_of(settings, suite)
    size = None if str(file) == "-" else file.stat().st_size
    show = progress if progress is not None else (size or 0) >= LARGE_BYTES
    with _input(file) as src, _output(output) as dst, _progress(show, size) as advance:
        summary = offline.score_lines(
            src, suite, dst, batch_size=batch_size, on_progress=advance, thresholds=thresholds
        )
    if summary.failed:
        raise offline.BadLines(f"{summary.failed} of {summary.scored + summary.failed} records are errors (see them)")


def register(cli: click.Group) -> None:
    cli.add_command(score)
