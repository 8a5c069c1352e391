"""Window-level drift between a reference window and the current one.

Fast path (the stream): RBF-MMD² of the embeddings — unbiased estimate, bandwidth σ² = median squared
reference-to-current distance, exactly evidently's `mmd()` drift method — on at most `max_samples` rows
per side, with a permutation p-value computed in one matrix product; plus a two-sample KS test on each
text descriptor (text_stats). Slow path (people): `write_drift_report` renders evidently's HTML report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from .text_stats import describe

MIN_SAMPLES = 5


@dataclass(frozen=True)
class DescriptorDrift:
    statistic: float
    p_value: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """MMD² score and permutation p-value of the embeddings; KS per descriptor when texts were given.

    `score`/`p_value` are None (and `drifted` False) when a side has fewer than MIN_SAMPLES rows.
    """

    score: float | None
    p_value: float | None
    drifted: bool
    bandwidth: float | None = None
    n_reference: int = 0
    n_current: int = 0
    descriptors: dict[str, DescriptorDrift] = field(default_factory=dict)

    @property
    def drifted_descriptors(self) -> list[str]:
        return [name for name, d in self.descriptors.items() if d.drifted]


def _sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.maximum(d, 0.0, out=d)


def median_bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    """σ² = (median Euclidean distance between reference and current rows)², evidently's choice."""
    return float(np.median(np.sqrt(_sq_dists(x, y))) ** 2)


def _block_sums(k: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For label columns z (N×B, 1 = reference), the kernel sums within x, within y and across."""
    kz = k @ z
    row = k.sum(1, keepdims=True, dtype=np.float64).astype(k.dtype)
    kw = row - kz
    w = 1.0 - z
    return (
        (z * kz).sum(0, dtype=np.float64),
        (w * kw).sum(0, dtype=np.float64),
        (z * kw).sum(0, dtype=np.float64),
    )


def _mmd2u(sxx: np.ndarray, syy: np.ndarray, sxy: np.ndarray, m: int, n: int) -> np.ndarray:
    # The RBF kernel's diagonal is 1: the unbiased estimate drops those m (resp. n) ones from the within sums.
    return (sxx - m) / (m * (m - 1.0)) + (syy - n) / (n * (n - 1.0)) - 2.0 * sxy / (m * n)


def mmd2_rbf(
    x: np.ndarray, y: np.ndarray, *, bandwidth: float | None = None, permutations: int = 0, seed: int = 0
) -> tuple[float, float | None, float]:
    """(MMD²_u clipped at 0, permutation p-value or None, σ²) between the rows of x and y.

    float32 throughout (2x faster than float64; the sums accumulate in float64): agrees with evidently's
    float64 value to ~1e-6 absolute.
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"MMD needs at least 2 rows per side, got {m} and {n}")
    xy = np.vstack([x, y])
    k = _sq_dists(xy, xy)
    sigma2 = bandwidth if bandwidth is not None else float(np.median(np.sqrt(k[:m, m:])) ** 2)
    k *= np.float32(-1.0 / max(sigma2, 1e-12))
    np.exp(k, out=k)
    labels = np.zeros((m + n, 1), dtype=np.float32)
    labels[:m] = 1.0
    observed = float(_mmd2u(*_block_sums(k, labels), m, n)[0])
    p_value = None
    if permutations > 0:
        rng = np.random.default_rng(seed)
        z = np.zeros((m + n, permutations), dtype=np.float32)
        for b in range(permutations):
            z[rng.permutation(m + n)[:m], b] = 1.0
        null = _mmd2u(*_block_sums(k, z), m, n)
        p_value = float((1 + np.sum(null >= observed)) / (1 + permutations))
    return max(observed, 0.0), p_value, sigma2


def _sample(a: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return a if len(a) <= limit else a[rng.choice(len(a), size=limit, replace=False)]


class DriftDetector:
    """Holds a reference window (embeddings, optional texts); `compare` tests a current window against it."""

    def __init__(
        self,
        reference: np.ndarray,
        reference_texts: Sequence[str] | None = None,
        *,
        max_samples: int = 500,
        permutations: int = 200,
        alpha: float = 0.05,
        seed: int = 0,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if max_samples < MIN_SAMPLES:
            raise ValueError(f"max_samples must be ≥ {MIN_SAMPLES}, got {max_samples}")
        self.max_samples = max_samples
        self.permutations = permutations
        self.alpha = alpha
        self.seed = seed
        self.reference = _sample(np.asarray(reference, dtype=np.float32), max_samples, np.random.default_rng(seed))
        self.n_reference = len(reference)
        self.reference_descriptors = describe(reference_texts) if reference_texts is not None else None

    def compare(self, current: np.ndarray, current_texts: Sequence[str] | None = None) -> DriftResult:
        current = np.asarray(current, dtype=np.float32)
        descriptors = self._descriptors(current_texts)
        if len(self.reference) < MIN_SAMPLES or len(current) < MIN_SAMPLES:
            return DriftResult(None, None, False, None, self.n_reference, len(current), descriptors)
        cur = _sample(current, self.max_samples, np.random.default_rng(self.seed + 1))
        score, p_value, sigma2 = mmd2_rbf(self.reference, cur, permutations=self.permutations, seed=self.seed)
        drifted = p_value is not None and p_value < self.alpha
        return DriftResult(score, p_value, drifted, sigma2, self.n_reference, len(current), descriptors)

    def _descriptors(self, texts: Sequence[str] | None) -> dict[str, DescriptorDrift]:
        if texts is None or self.reference_descriptors is None or len(texts) < MIN_SAMPLES:
            return {}
        current = describe(texts)
        # Bonferroni over the descriptors, so the window-level false alarm rate stays near alpha.
        level = self.alpha / len(current)
        out: dict[str, DescriptorDrift] = {}
        for name, values in current.items():
            res = stats.ks_2samp(self.reference_descriptors[name], values)
            out[name] = DescriptorDrift(float(res.statistic), float(res.pvalue), bool(res.pvalue < level))
        return out


def _frame(data: Sequence[str] | np.ndarray, embed: Any) -> Any:
    import pandas as pd

    if isinstance(data, np.ndarray):
        emb, texts = data, None
    else:
        texts = list(data)
        emb = embed(texts)
    df = pd.DataFrame(emb, columns=[f"e{i}" for i in range(emb.shape[1])])
    if texts is not None:
        for name, values in describe(texts).items():
            df[name] = values
    return df


def drift_snapshot(
    reference: Sequence[str] | np.ndarray, current: Sequence[str] | np.ndarray, embedder: Any = None
) -> Any:
    """Run evidently's report: embedding drift (its `mmd` method, which the fast path reproduces) and, when
    texts are given, each descriptor's distribution drift. Texts are embedded with the shared embedder."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift, ValueDrift
    from evidently.metrics.embeddings import MMDDriftMethod

    if embedder is None and not (isinstance(reference, np.ndarray) and isinstance(current, np.ndarray)):
        from .embeddings import get_embedder

        embedder = get_embedder()
    embed = embedder.encode if embedder is not None else None
    ref_df, cur_df = _frame(reference, embed), _frame(current, embed)
    emb_cols = [c for c in ref_df.columns if c.startswith("e") and c[1:].isdigit()]
    descriptor_cols = [c for c in ref_df.columns if c not in emb_cols and c in cur_df.columns]
    definition = DataDefinition(embeddings={"embeddings": emb_cols}, numerical_columns=descriptor_cols)
    metrics: list[Any] = [EmbeddingsDrift(embeddings_name="embeddings", drift_method=MMDDriftMethod())]
    metrics += [ValueDrift(column=c) for c in descriptor_cols]
    return Report(metrics).run(
        Dataset.from_pandas(cur_df, data_definition=definition), Dataset.from_pandas(ref_df, data_definition=definition)
    )


def write_drift_report(
    reference: Sequence[str] | np.ndarray, current: Sequence[str] | np.ndarray, path: str | Path, embedder: Any = None
) -> Path:
    """The HTML drift report people read. Slow (seconds: evidently draws a t-SNE plot): not for the stream."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    drift_snapshot(reference, current, embedder).save_html(str(out))
    return out
