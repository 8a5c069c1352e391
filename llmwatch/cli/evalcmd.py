"""`llmwatch eval report | train`: the evaluators' quality on their third-party test sets, and their training."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

DEFAULT_REPORTED = ("injection", "toxicity", "pii")


def _ids(value: str | None, default: tuple[str, ...]) -> list[str]:
    return [i.strip() for i in value.split(",") if i.strip()] if value else list(default)


@click.group("eval")
def eval_group() -> None:
    """Evaluator quality (report) and training (train)."""


@eval_group.command("report")
@click.option("--evaluators", "ids", default=None, help=f"Comma-separated ids (default: {','.join(DEFAULT_REPORTED)}).")
@click.option(
    "--split", type=click.Choice(["test", "validation", "train"]), default="test", show_default=True, help="Set split."
)
@click.option(
    "--json-out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Also write the report as JSON to this file ('-': stdout, and no table).",
)
def report(ids: str | None, split: str, json_out: Path | None) -> None:
    """Per evaluator and per slice of its set: AUC, recall at 1 % and 5 % false positives, flag rates; for PII,
    redaction recall per type and the share of clean texts flagged.

    Scores come from the evaluators as configured (LLMWATCH_EVAL__*), flags at their configured thresholds (>=).
    """
    from llmwatch.evaluators import quality
    from llmwatch.settings import get_settings

    try:
        sections = quality.report(get_settings(), _ids(ids, DEFAULT_REPORTED), split)
    except (ValueError, FileNotFoundError) as e:
        raise click.UsageError(str(e)) from e
    doc = {"split": split, "sections": sections}
    if json_out is not None:
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
        if str(json_out) == "-":
            sys.stdout.write(text)
            return
        json_out.write_text(text)
    _print(sections)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


#: short column headers for the table (the JSON keeps the full names)
HEADERS = {"flag_rate": "flagged", "recall_at_1pct_fpr": "recall@1%FP", "recall_at_5pct_fpr": "recall@5%FP"}


def _print(sections: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for sec in sections:
        summary = "  ".join(f"{k}={_fmt(v)}" for k, v in sec["summary"].items())
        console.print(f"[bold]{sec['evaluator']}[/bold] ({sec.get('backend', '')}, {sec['split']} split)\n  {summary}")
        slices = sec.get("slices") or []
        if not slices:
            continue
        columns = list(dict.fromkeys(k for row in slices for k in row))
        table = Table(show_edge=False, pad_edge=False)
        for c in columns:
            left = c in ("slice", "role")
            table.add_column(HEADERS.get(c, c), justify="left" if left else "right", no_wrap=not left)
        for row in slices:
            table.add_row(*(_fmt(row.get(c)) for c in columns))
        console.print(table)


@eval_group.command("train")
@click.option("--evaluators", "ids", default=None, help="Comma-separated ids (default: every trainable one).")
@click.option(
    "--embedding-backend",
    type=click.Choice(["auto", "onnx", "torch"]),
    default=None,
    help="MiniLM runtime (default: LLMWATCH_EVAL__EMBEDDING_BACKEND).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the training texts' embeddings here between runs (default: none kept).",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the weights files here instead of over the shipped ones.",
)
def train(ids: str | None, embedding_backend: str | None, cache_dir: Path | None, out_dir: Path | None) -> None:
    """Fit on the train split, calibrate and pick thresholds on validation, write the weights (never reads test)."""
    from llmwatch.evaluators.embeddings import get_embedder
    from llmwatch.evaluators.training import TRAINERS, trainer
    from llmwatch.settings import get_settings

    chosen = _ids(ids, tuple(TRAINERS))
    try:
        fns = {i: trainer(i) for i in chosen}
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    embedder = get_embedder(get_settings(), backend=embedding_backend)
    names = {"injection": "injection_head.json", "toxicity": "toxicity_weights.json"}
    for evaluator_id, fn in fns.items():
        out = None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            out = out_dir / names.get(evaluator_id, f"{evaluator_id}.json")
        meta = fn(embedder, out=out, cache_dir=cache_dir)
        click.echo(json.dumps({"evaluator": evaluator_id, **meta}, indent=1))


def register(cli: click.Group) -> None:
    cli.add_command(eval_group)
