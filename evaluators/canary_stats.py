"""Anytime-valid two-sample tests for canary rates: pure numpy/scipy, vectorised over rollouts.

The judge looks at the data again and again while a canary runs; a fixed-sample test (t-test,
Mann–Whitney) read that way inflates its false-alarm rate with every look. Both tests here stay
valid at every look, at any stopping time, because their evidence is a nonnegative supermartingale
under the null (Ville's inequality: P(ever E ≥ 1/α) ≤ α).

- **Fail** (`log_e_worse`): a two-sample *mixture likelihood ratio* against the composite null
  "the canary is not worse than the margin", p_c ≤ (1+rel)·p_b + abs. The numerator is a
  Jeffreys Beta–binomial mixture per arm (a product of predictive probabilities), the denominator
  the likelihood maximised over the null: sequential universal inference (Wasserman, Ramdas &
  Balakrishnan, PNAS 2020), exact in finite samples, with no normal approximation, so it holds for
  rare events (PII leaks) as well as for common ones. It reads only cumulative counts, so the
  inputs merge and no state is kept between looks. The always-valid p-value is 1/E.
- **Pass** (`rate_bound`, `difference_bounds`): one exact confidence sequence per arm (the
  Beta–binomial mixture CS, Robbins 1970; Howard et al. 2021), combined with a union bound into a
  bound on p_c − (1+rel)·p_b − abs. It stays cheap and tight with zero events, where a joint
  likelihood ratio pays for two nuisance parameters.

Hand-written because scipy has no sequential tests; scipy.special supplies the log-Beta terms.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, xlog1py, xlogy

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ArrayLike = npt.ArrayLike

#: Jeffreys prior Beta(1/2, 1/2): minimax regret for Bernoulli mixtures, puts mass near 0 for rare events.
PRIOR_A: Final = 0.5
PRIOR_B: Final = 0.5

_BISECTION_STEPS: Final = 40
_EPS: Final = 1e-300


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def log_mixture(k: ArrayLike, n: ArrayLike, a: float = PRIOR_A, b: float = PRIOR_B) -> FloatArray:
    """log of the Beta(a, b) mixture probability of k events in n trials (in their observed order)."""
    k, n = _f(k), _f(n)
    return betaln(k + a, n - k + b) - betaln(a, b)


def log_lik(k: ArrayLike, n: ArrayLike, p: ArrayLike) -> FloatArray:
    """Bernoulli log-likelihood of k events in n trials at rate p (0·log 0 = 0)."""
    k, n, p = _f(k), _f(n), _f(p)
    return xlogy(k, p) + xlog1py(n - k, -p)


def _boundary_p_b(
    kb: FloatArray, nb: FloatArray, kc: FloatArray, nc: FloatArray, rel: float, abs_: float
) -> FloatArray:
    """Baseline rate maximising the joint likelihood on the null boundary p_c = (1+rel)·p_b + abs.

    The joint log-likelihood is concave along that line, so bisection on its derivative converges;
    it is vectorised and needs no per-element branching.
    """
    s = 1.0 + rel
    lo = np.zeros_like(kb)
    hi = np.full_like(kb, min(1.0, (1.0 - abs_) / s))
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        g = s * mid + abs_
        slope = (
            kb / np.maximum(mid, _EPS)
            - (nb - kb) / np.maximum(1.0 - mid, _EPS)
            + s * (kc / np.maximum(g, _EPS) - (nc - kc) / np.maximum(1.0 - g, _EPS))
        )
        up = slope > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return 0.5 * (lo + hi)


def _check_margin(rel: float, abs_: float) -> None:
    if rel < 0 or not 0 <= abs_ < 1:
        raise ValueError(f"margins must be rel ≥ 0 and 0 ≤ abs < 1, got rel={rel}, abs={abs_}")


def log_e_worse(
    kb: ArrayLike, nb: ArrayLike, kc: ArrayLike, nc: ArrayLike, *, rel: float = 0.0, abs_: float = 0.0
) -> FloatArray:
    """log e-value against H0: p_c ≤ (1+rel)·p_b + abs (evidence that the canary is worse than the margin).

    Fail when it reaches log(1/α); then 1/E is an always-valid p-value. Negative values mean the data
    sit inside the null (no evidence).
    """
    _check_margin(rel, abs_)
    kb, nb, kc, nc = np.broadcast_arrays(_f(kb), _f(nb), _f(kc), _f(nc))
    mixture = log_mixture(kb, nb) + log_mixture(kc, nc)
    pb_hat = np.divide(kb, nb, out=np.zeros_like(kb), where=nb > 0)
    pc_hat = np.divide(kc, nc, out=np.zeros_like(kc), where=nc > 0)
    inside = pc_hat <= (1.0 + rel) * pb_hat + abs_
    p_b = np.where(inside, pb_hat, _boundary_p_b(kb, nb, kc, nc, rel, abs_))
    p_c = np.where(inside, pc_hat, (1.0 + rel) * p_b + abs_)
    return mixture - (log_lik(kb, nb, p_b) + log_lik(kc, nc, p_c))


def rate_bound(k: ArrayLike, n: ArrayLike, alpha: float, *, upper: bool, steps: int = 50) -> FloatArray:
    """Exact anytime-valid bound on a Bernoulli rate: the edge of the Beta–binomial mixture CS at level α.

    The CS is {p : mixture(k, n) / lik(p) < 1/α}; that ratio is convex in log-likelihood terms and
    grows away from k/n, so each edge is found by bisection. With n = 0 the bound is 0 or 1.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    k, n = np.broadcast_arrays(_f(k), _f(n))
    threshold = np.log(1.0 / alpha)
    mix = log_mixture(k, n)
    p_hat = np.divide(k, n, out=np.full_like(k, 0.5), where=n > 0)
    edge = np.ones_like(k) if upper else np.zeros_like(k)
    edge_inside = (mix - log_lik(k, n, edge)) < threshold
    inner, outer = p_hat.copy(), edge.copy()
    for _ in range(steps):
        mid = 0.5 * (inner + outer)
        inside = (mix - log_lik(k, n, mid)) < threshold
        inner = np.where(inside, mid, inner)
        outer = np.where(inside, outer, mid)
    # `inner` is always inside the CS, so the reported bound never claims more than the data allow.
    return np.where(edge_inside, edge, inner)


def difference_bounds(
    kb: ArrayLike,
    nb: ArrayLike,
    kc: ArrayLike,
    nc: ArrayLike,
    alpha: float,
    *,
    rel: float = 0.0,
    baseline_share: float = 0.25,
) -> tuple[FloatArray, FloatArray]:
    """Anytime-valid bounds (lower, upper) on p_c − (1+rel)·p_b, each holding with probability ≥ 1 − α.

    Union bound over the two arms' sequences; the baseline, which has far more traffic, gets the
    smaller share of α (`baseline_share`) because its bound tightens fast anyway.
    """
    a_b, a_c = alpha * baseline_share, alpha * (1.0 - baseline_share)
    s = 1.0 + rel
    lower = rate_bound(kc, nc, a_c, upper=False) - s * rate_bound(kb, nb, a_b, upper=True)
    upper = rate_bound(kc, nc, a_c, upper=True) - s * rate_bound(kb, nb, a_b, upper=False)
    return lower, upper


def tail_counts(
    baseline_hist: ArrayLike, canary_hist: ArrayLike, quantile: float, *, lower_tail: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(k_b, n_b, k_c, n_c): how many of each arm lie beyond the bucket of the baseline's `quantile`.

    Beyond means above it, or below it with `lower_tail` (then `quantile` is the low edge, e.g. 0.05).

    Histograms share bucket edges (the last axis is the bucket). The threshold bucket is chosen as
    DDSketch's `key_at_rank(quantile·(n−1))` does; values in that bucket count as not beyond it, so
    both arms are compared at exactly the same edge and the counts are exact, not interpolated.
    Because that edge is estimated from the baseline, the baseline's own count beyond it enters the
    two-sample test as data: its sampling error is part of the comparison, not ignored.
    """
    base = _f(baseline_hist)
    can = _f(canary_hist)
    if lower_tail:
        base, can = base[..., ::-1], can[..., ::-1]
        quantile = 1.0 - quantile
    n_b = base.sum(axis=-1)
    n_c = can.sum(axis=-1)
    rank = quantile * np.maximum(n_b - 1.0, 0.0)
    cum = np.cumsum(base, axis=-1)
    idx = np.argmax(cum > rank[..., None], axis=-1)
    beyond = np.arange(base.shape[-1]) > idx[..., None]
    k_b = np.where(beyond, base, 0.0).sum(axis=-1)
    k_c = np.where(beyond, can, 0.0).sum(axis=-1)
    return k_b, n_b, k_c, n_c
