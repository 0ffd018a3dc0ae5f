"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, "GANs Trained
by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium").

    FD = |mu1 - mu2|² + tr(S1) + tr(S2) - 2 tr((S1 S2)^½)

The trace of the matrix square root is the delicate part: ``scipy.linalg.sqrtm`` of the
non-symmetric product ``S1 S2`` returns complex noise when the product is near-singular (few
samples, more dimensions). Here we use the identity tr((S1 S2)^½) = tr((A S2 A)^½) with A = S1^½:
``A S2 A`` is symmetric positive semi-definite, so its square root comes from ``eigh`` with the
eigenvalues clipped at zero — exact in float64 and never complex.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError


def _as_features(x: object, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()  # type: ignore[union-attr]
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise DataError(f"{name} must be a (N, F) feature array with N >= 2, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"{name} holds non-finite values")
    return arr


def _clip_eigenvalues(values: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with round-off removed: anything below n·eps·max is exactly 0.
    (A true zero computes as ±1e-16·max, and its square root would add a spurious 1e-8·√max.)"""
    floor = len(values) * np.finfo(np.float64).eps * max(float(np.abs(values).max(initial=0.0)), 1e-300)
    return np.where(values > floor, values, 0.0)


def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix."""
    sym = (matrix + matrix.T) / 2
    values, vectors = np.linalg.eigh(sym)
    return (vectors * np.sqrt(_clip_eigenvalues(values))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^½) for covariance matrices, via the symmetric form tr((S1^½ S2 S1^½)^½)."""
    root1 = sqrtm_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(_clip_eigenvalues(values)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise DataError(f"feature dimensions differ: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2)
    return float(max(value, 0.0))  # tiny negative values are round-off


def gaussian_stats(features: object) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof=1) of a (N, F) feature array, in float64."""
    arr = _as_features(features, "features")
    return arr.mean(axis=0), np.cov(arr, rowvar=False)


def fid_from_features(generated: object, reference: object) -> float:
    """Fréchet distance between the Gaussians fitted to two (N, F) feature sets."""
    mu1, s1 = gaussian_stats(_as_features(generated, "generated features"))
    mu2, s2 = gaussian_stats(_as_features(reference, "reference features"))
    return frechet_distance(mu1, s1, mu2, s2)
