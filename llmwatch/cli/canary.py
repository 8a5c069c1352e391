"""`llmwatch canary replay FILE.jsonl`: recorded llm.eval.scores through the production judge and controller."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from llmwatch.errors import LlmwatchError


@click.group("canary")
def canary() -> None:
    """Canary judging offline (the production judge and controller on recorded traffic)."""


@canary.command("replay")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--deployment", help="Deployment to judge (default: the first record's).")
@click.option("--baseline", help="Baseline model version (default: the records' variant 'baseline').")
@click.option("--canary", "canary_version", help="Canary model version (default: the records' variant 'canary').")
@click.option("--kayenta", is_flag=True, help="Judge with the Kayenta-style judge instead (to compare).")
@click.option("--verdicts/--no-verdicts", default=True, show_default=True, help="Print every verdict, not only moves.")
def replay(
    path: Path, deployment: str | None, baseline: str | None, canary_version: str | None, kayenta: bool, verdicts: bool
) -> None:
    """Replay PATH (llm.eval.scores payloads, one JSON object per line, in time order; '-' reads stdin): the rollout
    starts at the first record, verdicts come every LLMWATCH_JUDGE__INTERVAL_S of record time, the controller moves
    the weights as in production. Prints one JSON line per verdict, weight move and alert ("type" says which), then
    a summary; lines that are not payloads are reported on stderr and skipped."""
    from llmwatch.settings import get_settings
    from llmwatch.streams.offline import Invalid
    from llmwatch.streams.offline import replay as run_replay

    invalid: list[Invalid] = []

    def bad(i: Invalid) -> None:
        invalid.append(i)
        click.echo(json.dumps({"type": "invalid", "line": i.line, "reason": i.reason}), err=True)

    stream = sys.stdin.buffer if str(path) == "-" else None
    try:
        f = stream or path.open("rb")
    except OSError as e:
        raise LlmwatchError(f"cannot read {path}: {e}") from e
    last = None
    counts = {"verdict": 0, "weights": 0, "alert": 0}
    try:
        events = run_replay(
            f, deployment=deployment, baseline=baseline, canary=canary_version, settings=get_settings(),
            kayenta=kayenta, on_invalid=bad,
        )  # fmt: skip
        for e in events:
            counts[e.kind] += 1
            if e.kind == "weights":
                last = e.payload
            if e.kind != "verdict" or verdicts:
                click.echo(e.to_json())
    except ValueError as e:
        raise LlmwatchError(str(e)) from e
    finally:
        if stream is None:
            f.close()
    summary = {
        "type": "summary",
        "state": getattr(last, "state", None),
        "weights": getattr(last, "weights", None),
        "verdicts": counts["verdict"],
        "moves": counts["weights"],
        "alerts": counts["alert"],
        "invalid_lines": len(invalid),
    }
    click.echo(json.dumps(summary))


def register(cli: click.Group) -> None:
    cli.add_command(canary)
