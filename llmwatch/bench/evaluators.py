"""`llmwatch bench evaluators`: items/s of every evaluator at batch 1 and at its best batch size, beside
the raw embedding model (torch vs onnx-int8, and their cosine) that bounds the embedding-based ones, the
drift fast path in ms, and how long `llmwatch score` takes from its start to its first output line (the
evaluators' load time, as a user meets it). Medians of several repeats, all in one run, written to BENCHMARKS.md.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from llmwatch.bench.report import write_section
from llmwatch.evaluators.base import MODULES, EvalItem, build_evaluator

log = logging.getLogger(__name__)

LABELED_SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "groundedness.jsonl"


@dataclass(frozen=True)
class EvaluatorRow:
    id: str
    status: str  # "ok", "not built" or "error: …"
    backend: str = ""
    batch1: float | None = None
    best_batch: int | None = None
    best: float | None = None


@dataclass(frozen=True)
class EmbeddingRow:
    backend: str
    batch1: float
    batch8: float
    batch32: float
    cos_mean: float
    cos_min: float


def bench_items(n: int, offset: int = 0) -> list[EvalItem]:
    """RAG-shaped items: the groundedness set when the checkout has it, else sentences built here.

    Each item is tagged with its index (from `offset`), so texts never repeat across calls: evaluators
    that cache per text would otherwise measure their cache.
    """
    if LABELED_SET.exists():
        rows = [json.loads(line) for line in LABELED_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
        base = [EvalItem(r["prompt"], r["response"], r["context"]) for r in rows]
    else:
        base = [
            EvalItem(
                f"What does section {i} of the handbook say about leave?",
                f"Section {i} grants {i % 30 + 5} days of paid leave per year. Unused days expire in March.",
                [
                    f"Section {i}: employees receive {i % 30 + 5} days of paid leave per year; "
                    "unused days expire on 31 March."
                ],
            )
            for i in range(100)
        ]
    out = []
    for i in range(offset, offset + n):
        it = base[i % len(base)]
        out.append(EvalItem(f"{it.prompt} (ticket {i})", f"{it.response} Ticket {i}.", it.context))
    return out


class Fresh:
    """`make(n)` → n items no earlier call returned (for the whole run: caches never see a text twice)."""

    def __init__(self, produce: Callable[[int, int], Sequence[Any]] = bench_items) -> None:
        self.produce = produce
        self.offset = 0

    def __call__(self, n: int) -> Sequence[Any]:
        items = self.produce(n, self.offset)
        self.offset += n
        return items


def throughput(
    fn: Callable[[Sequence[Any]], Any], make: Callable[[int], Sequence[Any]], n: int, batch: int, repeats: int
) -> float:
    """Median items/s of `fn` over n fresh items per repeat (`make(n)`) in batches of `batch`, after a warm-up."""
    fn(make(batch))
    rates = []
    for _ in range(repeats):
        items = make(n)
        t0 = time.perf_counter()
        for start in range(0, len(items), batch):
            fn(items[start : start + batch])
        rates.append(len(items) / (time.perf_counter() - t0))
    return statistics.median(rates)


def measure_evaluators(
    settings: Any, ids: Sequence[str], n_items: int, batches: Sequence[int], repeats: int
) -> list[EvaluatorRow]:
    rows = []
    fresh = Fresh()
    for eid in ids:
        module = MODULES.get(eid)
        if module is None:
            rows.append(EvaluatorRow(eid, "unknown id"))
            continue
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            rows.append(EvaluatorRow(eid, "not built" if e.name == module else f"error: {e}"))
            continue
        try:
            ev = build_evaluator(eid, settings)
            rates = {}
            for b in batches:
                n = max(8, n_items // 4) if b == 1 else max(b, n_items)
                rates[b] = throughput(ev.score_batch, fresh, n, b, repeats)
        except Exception as e:  # a broken evaluator is reported, the bench goes on
            log.exception("evaluator %s failed", eid)
            rows.append(EvaluatorRow(eid, f"error: {type(e).__name__}: {e}"))
            continue
        best = max(rates, key=lambda b: rates[b])
        rows.append(EvaluatorRow(eid, "ok", ev.backend, rates.get(1), best, rates[best]))
    return rows


def measure_embeddings(settings: Any, n_texts: int, repeats: int) -> list[EmbeddingRow]:
    """Raw model throughput per runtime on the items' texts, and each runtime's cosine to torch."""
    from llmwatch.evaluators.embeddings import get_embedder

    def texts(n: int, offset: int) -> list[str]:
        return [t for it in bench_items(n, offset) for t in (it.response, *(it.context or []))][:n]

    sample = texts(n_texts, 10**7)
    fresh = Fresh(texts)
    rows: list[EmbeddingRow] = []
    ref: np.ndarray | None = None
    for backend in ("torch", "onnx"):
        try:
            emb = get_embedder(settings, backend=backend)
        except Exception as e:
            log.warning("embedding backend %s unavailable: %s", backend, e)
            continue
        vecs = emb.encode(sample)
        ref = vecs if ref is None else ref
        cos = (vecs * ref).sum(axis=1)
        rows.append(
            EmbeddingRow(
                emb.backend,
                throughput(lambda b, e=emb: e.encode(b, batch_size=1), fresh, max(8, n_texts // 4), 1, repeats),
                throughput(lambda b, e=emb: e.encode(b, batch_size=8), fresh, n_texts, 8, repeats),
                throughput(lambda b, e=emb: e.encode(b, batch_size=32), fresh, n_texts, 32, repeats),
                float(cos.mean()),
                float(cos.min()),
            )
        )
    return rows


def measure_drift(n: int, repeats: int) -> dict[str, float]:
    """ms of DriftDetector.compare on two windows of n embeddings (384-d), and with text descriptors too."""
    from llmwatch.evaluators.drift import DriftDetector

    rng = np.random.default_rng(0)

    def window(shift: float) -> np.ndarray:
        v = rng.normal(size=(n, 384)).astype(np.float32)
        v[:, :8] += shift
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    texts = [it.response for it in bench_items(n)]
    ref, cur = window(0.0), window(0.3)
    det = DriftDetector(ref, texts)
    out = {}
    for name, call in {
        "embeddings": lambda: det.compare(cur),
        "embeddings+descriptors": lambda: det.compare(cur, texts),
    }.items():
        call()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            times.append(1000 * (time.perf_counter() - t0))
        out[name] = statistics.median(times)
    return out


def measure_score_start(repeats: int) -> list[float]:
    """Seconds from launching `llmwatch score` on a one-line file to its first output line, every evaluator on:
    a new process each time, as a user runs it (imports, model loads, warm-up included)."""
    line = {"prompt": "Call me at +44 20 7946 0958 about the invoice.", "response": "Sure.", "context": "Invoices."}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.jsonl"
        path.write_text(json.dumps(line) + "\n")
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            cmd = [sys.executable, "-m", "llmwatch", "score", str(path), "--no-progress"]
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
                assert proc.stdout is not None
                first = proc.stdout.readline()
                times.append(time.perf_counter() - t0)
                proc.communicate()
            if proc.returncode != 0 or not first:
                raise click.ClickException(f"`llmwatch score` failed (exit {proc.returncode}): {first!r}")
    return times


def _best(e: EmbeddingRow) -> float:
    return max(e.batch1, e.batch8, e.batch32)


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def render(
    evaluators: Sequence[EvaluatorRow],
    embeddings: Sequence[EmbeddingRow],
    drift: dict[str, float],
    meta: dict[str, Any],
) -> str:
    lines = [
        f"{meta['n_items']} RAG-shaped items (groundedness set, cycled); medians of {meta['repeats']} repeats; "
        f"batch sizes tried: {', '.join(map(str, meta['batches']))}. 1-min load average before/after: "
        f"{meta.get('load', '?')} (other processes on a 2-core box move these figures by 2-3x).",
        "",
        "| evaluator | backend | items/s at batch 1 | best batch | items/s at best batch |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in evaluators:
        if r.status != "ok":
            lines.append(f"| {r.id} | {r.status} | – | – | – |")
        else:
            lines.append(f"| {r.id} | {r.backend} | {_num(r.batch1)} | {r.best_batch} | {_num(r.best)} |")
    lines += [
        "",
        "Raw embedding model (all-MiniLM-L6-v2, 256 tokens max; the limit for evaluators that embed):",
        "",
        "| runtime | texts/s at batch 1 | at batch 8 | at batch 32 | cosine to torch (mean / min) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {e.backend} | {_num(e.batch1)} | {_num(e.batch8)} | {_num(e.batch32)} | "
        f"{e.cos_mean:.4f} / {e.cos_min:.4f} |"
        for e in embeddings
    ]
    by = {e.backend: e for e in embeddings}
    if "torch" in by and "onnx-int8" in by:
        t, o = by["torch"], by["onnx-int8"]
        lines += [
            "",
            f"onnx-int8 / torch: ×{o.batch1 / t.batch1:.1f} at batch 1, ×{o.batch32 / t.batch32:.1f} at batch 32, "
            f"×{_best(o) / _best(t):.1f} best against best.",
        ]
    lines += [
        "",
        f"Drift fast path, two windows of {meta['drift_n']} events "
        "(MMD² on ≤500/side, 200 permutations; KS on descriptors):",
        "",
        "| drift | ms (median) |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {ms:.0f} |" for name, ms in drift.items()]
    starts = meta.get("score_start") or []
    if starts:
        lines += [
            "",
            f"`llmwatch score` on a one-line file, every evaluator on, from launch to its first output line: median "
            f"{statistics.median(starts):.1f} s ({', '.join(f'{t:.1f}' for t in starts)}; a new process each; "
            f"Python bytecode caching {'off' if os.environ.get('PYTHONDONTWRITEBYTECODE') else 'on'}).",
        ]
    return "\n".join(lines)


@click.command("evaluators")
@click.option("--quick", is_flag=True, help="Fewer items, batch sizes and repeats (< 2 minutes).")
@click.option("--only", "only", multiple=True, help="Evaluator id to measure (repeatable); default: all known.")
@click.option("--items", "n_items", type=int, default=None, help="Items per measurement (default 256, quick 64).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("BENCHMARKS.md"))
def command(quick: bool, only: tuple[str, ...], n_items: int | None, output: Path) -> None:
    """Items/s per evaluator, raw embedding throughput (torch vs onnx-int8) and drift ms."""
    from llmwatch.settings import get_settings

    settings = get_settings()
    # every measured text is new, and the shared embedding cache would still serve the repeated sentences of
    # the cycled items for free: measure with it off
    settings = settings.model_copy(update={"eval": settings.eval.model_copy(update={"embedding_cache": 0})})
    n = n_items or (64 if quick else 256)
    repeats = 3 if quick else 5
    batches = [1, 32] if quick else [1, 8, 32, 128]
    ids = list(only) or list(MODULES)
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    embeddings = measure_embeddings(settings, n, repeats)
    evaluators = measure_evaluators(settings, ids, n, batches, repeats)
    drift = measure_drift(1000, repeats)
    score_start = measure_score_start(3)
    load = f"{load_before:.1f}/{os.getloadavg()[0]:.1f}"
    meta = {"n_items": n, "repeats": repeats, "batches": batches, "drift_n": 1000, "load": load}
    meta["score_start"] = score_start
    body = render(evaluators, embeddings, drift, meta)
    click.echo(body)
    write_section("evaluators", body, path=output)
    click.echo(f"\n({time.perf_counter() - t0:.0f} s; section written to {output})", err=True)
