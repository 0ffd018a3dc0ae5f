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
    """Fréchet distance between the Gaussians fitted to two (N, F) feature sets.

    With fewer samples than features (raw pixels: 106 facades of 12,288 values) the covariances
    have rank < N and the F x F route costs F³; the same number then comes from the samples alone
    (:func:`_frechet_from_samples`, cost N1·N2·F), exact up to round-off."""
    x1, x2 = _as_features(generated, "generated features"), _as_features(reference, "reference features")
    if x1.shape[1] != x2.shape[1]:
        raise DataError(f"feature dimensions differ: {x1.shape[1]} vs {x2.shape[1]}")
    if x1.shape[0] * x2.shape[0] < x1.shape[1] ** 2:
        return _frechet_from_samples(x1, x2)
    mu1, s1 = gaussian_stats(x1)
    mu2, s2 = gaussian_stats(x2)
    return frechet_distance(mu1, s1, mu2, s2)


def _frechet_from_samples(x1: np.ndarray, x2: np.ndarray) -> float:
    """The Fréchet distance through the centred samples: with S1 = A Aᵀ and S2 = B Bᵀ (A = the centred
    x1 transposed over √(N1 - 1), F x N1), S1 S2 has the non-zero eigenvalues of (AᵀB)(AᵀB)ᵀ, so
    tr((S1 S2)^½) is the sum of the singular values of the N1 x N2 matrix AᵀB and tr(S1) = |A|²."""
    mu1, mu2 = x1.mean(0), x2.mean(0)
    a = (x1 - mu1) / np.sqrt(x1.shape[0] - 1)
    b = (x2 - mu2) / np.sqrt(x2.shape[0] - 1)
    diff = mu1 - mu2
    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    value = diff @ diff + (a * a).sum() + (b * b).sum() - 2 * cross
    return float(max(value, 0.0))
