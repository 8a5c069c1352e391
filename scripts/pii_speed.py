"""PII detection cost per text, this checkout against a baseline commit, in one run (same machine, same load).

The baseline's evaluators/ folder is taken from git (`git archive`) into a temporary folder and imported beside
the current one. Three text mixes: the items `llmwatch bench evaluators` scores (RAG prose, few digits), the
simulator's traffic (what `llmwatch bench pipeline` sends: topic prompts and answers, PII templates), and the
generated PII set's validation split (every text holds a value or numbers that are no PII). Caches are off
(cache_size=0); medians of `--repeats` passes.

    python3 scripts/pii_speed.py --baseline 330c532
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _texts() -> dict[str, list[str]]:
    from llmwatch.bench.evaluators import bench_items
    from llmwatch.evaluators.pii.quality import load_split
    from llmwatch.sim.corpus import fill_pii, load_corpus

    items = bench_items(400)
    corpus = load_corpus()
    rng = random.Random(7)
    sim = [t for p in corpus.prompts[:300] for t in (p.prompt, p.answer)]
    sim += [fill_pii(rng.choice(corpus.pii), rng) for _ in range(60)]
    return {
        "bench evaluators items": [t for it in items for t in (it.prompt, it.response)],
        "simulator traffic": sim,
        "PII set (validation)": [r["text"] for r in load_split("validation")],
    }


def _per_text_us(detect: Callable[[str], object], texts: list[str], repeats: int) -> float:
    for t in texts[:50]:
        detect(t)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for t in texts:
            detect(t)
        runs.append((time.perf_counter() - t0) / len(texts) * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="git commit whose evaluators/ is the baseline")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from llmwatch.evaluators.pii.detector import PiiDetector

    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", args.baseline, "evaluators"], cwd=ROOT, capture_output=True)
        archive.check_returncode()
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        sys.path.insert(0, tmp)
        old_pkg = importlib.import_module("evaluators.pii")
        old = getattr(old_pkg, "PiiDetector", None) or importlib.import_module("evaluators.pii.detector").PiiDetector
        detectors = {"baseline": old(cache_size=0).detect, "this checkout": PiiDetector(cache_size=0).detect}
        out = {}
        for mix, texts in _texts().items():
            row = {name: round(_per_text_us(d, texts, args.repeats), 1) for name, d in detectors.items()}
            row["ratio"] = round(row["this checkout"] / row["baseline"], 2)
            row["texts"] = len(texts)
            out[mix] = row
    print(json.dumps({"baseline": args.baseline, "µs per text (median)": out}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
