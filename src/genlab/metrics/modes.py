"""Mode coverage on mixtures of Gaussians (the ring and grid of PacGAN / VEEGAN).

Protocol of Lin et al. 2018 ("PacGAN"), after Srivastava et al. 2017 ("VEEGAN"): draw 2,500
samples; a sample is *high quality* when it lies within ``threshold`` (3) standard deviations of its
nearest mode centre; a mode is *captured* when at least one high-quality sample falls to it. Report
modes captured, the % of high-quality samples, and the reverse KL divergence KL(q ‖ p) between the
generated distribution over modes q (high-quality samples binned by nearest mode) and the data's
uniform distribution p.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import DataError
from .fid import _as_features


def count_modes(samples: object, centres: object, std: float, *, threshold: float = 3.0) -> dict[str, float]:
    """Mode statistics of ``samples`` (N, D) against mode ``centres`` (K, D) of common ``std``."""
    x = torch.from_numpy(_as_features(samples, "samples"))
    c = torch.from_numpy(np.asarray(centres, dtype=np.float64))
    if c.ndim != 2 or c.shape[1] != x.shape[1]:
        raise DataError(f"centres must be (K, {x.shape[1]}), got shape {tuple(c.shape)}")
    if std <= 0:
        raise DataError(f"mode std must be > 0, got {std}")
    dist, nearest = torch.cdist(x, c).min(dim=1)  # (N,)
    good = dist <= threshold * std
    counts = torch.bincount(nearest[good], minlength=len(c)).double()  # (K,)
    k = len(c)
    total = counts.sum()
    if total > 0:
        q = counts / total
        nz = q > 0
        reverse_kl = float((q[nz] * (q[nz] * k).log()).sum())
    else:
        reverse_kl = math.inf
    return {
        "modes": float((counts > 0).sum()),
        "num_modes": float(k),
        "high_quality": float(good.double().mean()),
        "reverse_kl": reverse_kl,
    }
