"""`llmwatch bench evaluators`: fresh items per round, 'not built' rows instead of crashes, the written section."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llmwatch.bench.evaluators import Fresh, bench_items, command, measure_evaluators, throughput
from llmwatch.evaluators import base
from llmwatch.settings import Settings


def test_bench_items_never_repeat_a_text() -> None:
    a, b = bench_items(50), bench_items(50, offset=50)
    texts = [it.response for it in a + b] + [it.prompt for it in a + b]
    assert len(a) == 50 and len(set(texts)) == len(texts)
    assert all(it.context for it in a)


def test_throughput_feeds_fresh_batches_and_times_them() -> None:
    seen: list[list[str]] = []

    def fn(batch: Sequence[Any]) -> None:
        seen.append([it.response for it in batch])
        time.sleep(0.002 * len(batch))

    fresh = Fresh()
    rate = throughput(fn, fresh, n=8, batch=4, repeats=3)
    throughput(fn, fresh, n=8, batch=8, repeats=1)  # a second measurement in the same run
    assert [len(b) for b in seen] == [4] + [4, 4] * 3 + [8, 8]  # warm-up, then 2 batches per repeat
    texts = [t for b in seen for t in b]
    assert len(set(texts)) == len(texts) == 44  # no text is ever fed twice: caches measure nothing
    assert 0 < rate <= 500  # 2 ms per item at best


def test_missing_unknown_and_broken_evaluators_are_rows_not_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_settings: Any) -> base.Evaluator:
        raise RuntimeError("model file missing")

    monkeypatch.setitem(base.MODULES, "ghost", "llmwatch.evaluators.ghost_not_built_yet")
    monkeypatch.setitem(base.MODULES, "broken", "llmwatch.evaluators.base")
    monkeypatch.setitem(base.REGISTRY, "broken", broken)
    rows = measure_evaluators(Settings(), ["ghost", "nope", "broken", "hallucination"], 8, [1, 4], 1)
    by_id = {r.id: r for r in rows}
    assert by_id["ghost"].status == "not built"
    assert by_id["nope"].status == "unknown id"
    assert by_id["broken"].status.startswith("error: RuntimeError: model file missing")
    ok = by_id["hallucination"]
    assert ok.status == "ok" and ok.backend.startswith("minilm-") and ok.best_batch in (1, 4)
    assert ok.batch1 and ok.best and ok.best >= ok.batch1


def test_command_writes_its_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(base.MODULES, "ghost", "llmwatch.evaluators.ghost_not_built_yet")
    out = tmp_path / "BENCHMARKS.md"
    result = CliRunner().invoke(command, ["--quick", "--only", "ghost", "--items", "8", "--output", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "<!-- bench:evaluators -->" in text and "| ghost | not built |" in text
    [onnx_row] = [line for line in text.splitlines() if line.startswith("| onnx-int8 |")]
    assert onnx_row.count("|") == 6 and "| torch |" in text and "best against best" in text
    assert "| embeddings |" in text and "| embeddings+descriptors |" in text
