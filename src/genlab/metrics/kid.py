"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

The squared MMD with the cubic polynomial kernel k(x, y) = (x·y / d + 1)³, estimated without bias
(diagonal terms dropped) on ``num_subsets`` random subsets of ``subset_size`` from each set; the
result is the mean and standard deviation over subsets. Unlike FID the estimator is unbiased, so two
samples of one distribution give ≈ 0 (possibly slightly negative) at any N.
"""
from __future__ import annotations

import numpy as np

from .fid import _as_features


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD² between two (m, d) samples with k(a, b) = (a·b / d + coef0)^degree."""
    m, d = x.shape
    k_xx = (x @ x.T / d + coef0) ** degree
    k_yy = (y @ y.T / d + coef0) ** degree
    k_xy = (x @ y.T / d + coef0) ** degree
    sum_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    sum_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(sum_xx + sum_yy - 2 * k_xy.mean())


def kid_from_features(
    generated: object,
    reference: object,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of the unbiased polynomial-kernel MMD² over random subsets (without replacement
    inside a subset). ``subset_size`` is capped at the smaller set's size."""
    x = _as_features(generated, "generated features")
    y = _as_features(reference, "reference features")
    size = min(subset_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        xi = x[rng.choice(len(x), size, replace=False)]
        yi = y[rng.choice(len(y), size, replace=False)]
        values[i] = polynomial_mmd2(xi, yi)
    return float(values.mean()), float(values.std())
