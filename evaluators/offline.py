"""Offline scoring behind `llmwatch score`: JSON lines in, one JSON line of scores out per input line.

Each record also carries `thresholds` (the configured threshold of every thresholded score the suite fills) and
`flags` (each score's decision at its threshold: true when score >= threshold, false below, null when the score
is null), so anyone can check the decisions, not just the scores. An input line may carry `system` (the operator's
system prompt): it is prepended to the prompt and marked as the operator's (never scored as an injection).

A bad line (not JSON, no `prompt`, an evaluator failing on it) becomes an error record `{"line": N, "error":
…}` in its place and the run goes on; the caller decides what the failures mean (the CLI exits non-zero).
Streams are passed in (bytes in, text out) so the same code serves files, pipes and tests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from llmwatch.errors import ConfigError, LlmwatchError
from llmwatch.schemas.events import SYSTEM_CHARS_ATTR

from .base import MODULES, EvalItem, EvaluatorSuite, build_evaluator
from .calibration import flagged

log = logging.getLogger(__name__)

#: Keys every score record has; null where the evaluator that fills it did not run or does not apply.
RECORD_FIELDS = (
    "toxicity",
    "toxicity_prompt",
    "pii_prompt",
    "pii_response",
    "pii_leak",
    "injection",
    "injection_success",
    "hallucination",
    "redacted_prompt",
    "redacted_response",
)
#: EvalScores field → record key, where the record's name is the one people ask for.
RENAMED = {"toxicity_response": "toxicity"}
#: record key → the settings.eval field holding its flag threshold
THRESHOLDED = {
    "toxicity": "toxicity_threshold",
    "toxicity_prompt": "toxicity_threshold",
    "injection": "injection_threshold",
    "hallucination": "hallucination_threshold",
}


def thresholds_of(settings: Any, suite: EvaluatorSuite) -> dict[str, float]:
    """The configured threshold of each thresholded record key the suite fills."""
    filled = {RENAMED.get(out, out) for ev in suite.evaluators for out in ev.outputs}
    return {key: float(getattr(settings.eval, field)) for key, field in THRESHOLDED.items() if key in filled}


class BadLines(LlmwatchError):
    """Some lines got error records instead of scores."""


@dataclass
class Summary:
    lines: int = 0
    scored: int = 0
    failed: int = 0


def load_evaluators(settings: Any, ids: Sequence[str] | None = None) -> EvaluatorSuite:
    """Build the named evaluators (default: settings.eval.enabled), naming any that cannot be built."""
    evaluators = []
    for evaluator_id in ids or settings.eval.enabled:
        module = MODULES.get(evaluator_id)
        if module is None:
            raise ConfigError(f"unknown evaluator {evaluator_id!r}; known: {', '.join(sorted(MODULES))}")
        try:
            evaluators.append(build_evaluator(evaluator_id, settings))
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                raise ConfigError(f"evaluator {evaluator_id!r} is not available: {module} does not exist yet") from e
            raise ConfigError(f"evaluator {evaluator_id!r} needs the missing package {e.name!r}") from e
        except KeyError as e:
            raise ConfigError(f"evaluator {evaluator_id!r}: {module} does not register it") from e
        except Exception as e:  # a model file missing, a bad setting: say which evaluator, keep the cause
            log.debug("building evaluator %s failed", evaluator_id, exc_info=True)
            raise ConfigError(f"evaluator {evaluator_id!r} could not be built: {type(e).__name__}: {e}") from e
    return EvaluatorSuite(evaluators)


def parse_item(raw: bytes | str) -> EvalItem:
    """One input line as an EvalItem; ValueError says what is wrong with it."""
    try:
        obj = json.loads(raw)
    except ValueError as e:  # UnicodeDecodeError included
        raise ValueError(f"not a JSON line: {e}") from e
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object with `prompt`")
    prompt, response, context = obj.get("prompt"), obj.get("response"), obj.get("context")
    if not isinstance(prompt, str):
        raise ValueError("`prompt` must be a string")
    if response is not None and not isinstance(response, str):
        raise ValueError("`response` must be a string or null")
    if isinstance(context, str):
        context = [context]
    elif context is not None and not (isinstance(context, list) and all(isinstance(c, str) for c in context)):
        raise ValueError("`context` must be a string or a list of strings")
    system = obj.get("system")
    if system is not None and not isinstance(system, str):
        raise ValueError("`system` must be a string or null")
    metadata: dict[str, Any] = {"id": obj["id"]} if "id" in obj else {}
    if system:
        prompt = f"{system}\n{prompt}"
        metadata[SYSTEM_CHARS_ATTR] = str(len(system) + 1)
    return EvalItem(prompt=prompt, response=response or "", context=context or None, metadata=metadata)


def to_record(
    line: int,
    item: EvalItem,
    scores: dict[str, Any],
    backends: dict[str, str],
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    shown = {k: v for k, v in item.metadata.items() if k != SYSTEM_CHARS_ATTR}
    record: dict[str, Any] = {"line": line, **shown, **dict.fromkeys(RECORD_FIELDS)}
    for key, value in scores.items():
        record[RENAMED.get(key, key)] = value
    record["backends"] = backends
    thresholds = thresholds or {}
    record["thresholds"] = thresholds
    record["flags"] = {key: flagged(record.get(key), t) for key, t in thresholds.items()}
    return record


def error_record(line: int, error: str) -> dict[str, Any]:
    return {"line": line, "error": error}


class _Scorer:
    """Scores a batch; when an evaluator raises, scores the items one by one to pin the failure on a line."""

    def __init__(self, suite: EvaluatorSuite, thresholds: dict[str, float] | None = None) -> None:
        self.suite = suite
        self.backends = {ev.id: ev.name for ev in suite.evaluators}
        self.thresholds = thresholds or {}

    def records(self, batch: list[tuple[int, EvalItem | str]]) -> list[dict[str, Any]]:
        items = [(n, x) for n, x in batch if isinstance(x, EvalItem)]
        scored = dict(self._score([n for n, _ in items], [x for _, x in items]))
        out = []
        for n, x in batch:
            if isinstance(x, str):
                out.append(error_record(n, x))
            elif isinstance(scored[n], str):
                out.append(error_record(n, scored[n]))
            else:
                out.append(to_record(n, x, scored[n], self.backends, self.thresholds))
        return out

    def _score(self, lines: list[int], items: list[EvalItem]) -> list[tuple[int, dict[str, Any] | str]]:
        if not items:
            return []
        try:
            return list(zip(lines, self.suite.score_batch(items), strict=True))
        except Exception as e:  # an evaluator bug on one item must not cost the whole batch its scores
            if len(items) == 1:
                return [(lines[0], f"scoring failed: {type(e).__name__}: {e}")]
        out: list[tuple[int, dict[str, Any] | str]] = []
        for n, item in zip(lines, items, strict=True):
            try:
                out.append((n, self.suite.score_batch([item])[0]))
            except Exception as e:
                out.append((n, f"scoring failed: {type(e).__name__}: {e}"))
        return out


def _dump(record: dict[str, Any]) -> tuple[str, bool]:
    """The JSON line and whether it is an error record (scores must be finite to be JSON)."""
    try:
        return json.dumps(record, ensure_ascii=False, allow_nan=False), "error" in record
    except ValueError:
        return json.dumps(error_record(record["line"], "an evaluator returned a non-finite number")), True


def score_lines(
    lines: Iterable[bytes | str],
    suite: EvaluatorSuite,
    out: IO[str],
    *,
    batch_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
    thresholds: dict[str, float] | None = None,
) -> Summary:
    """Score every line of `lines` into `out`, in input order; blank lines are skipped (but counted)."""
    scorer, summary = _Scorer(suite, thresholds), Summary()
    batch: list[tuple[int, EvalItem | str]] = []

    def flush() -> None:
        for record in scorer.records(batch):
            text, failed = _dump(record)
            summary.failed += failed
            summary.scored += not failed
            out.write(text + "\n")
        batch.clear()

    for number, raw in enumerate(lines, 1):
        summary.lines = number
        if on_progress is not None:
            on_progress(len(raw))
        if not raw.strip():
            continue
        try:
            batch.append((number, parse_item(raw)))
        except ValueError as e:
            batch.append((number, str(e)))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return summary
