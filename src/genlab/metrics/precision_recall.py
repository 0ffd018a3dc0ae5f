"""k-nearest-neighbour fidelity and diversity of generated samples in a feature space.

* Improved precision and recall (Kynkäänniemi et al. 2019): each set's support is the union of balls
  reaching every point's k-th nearest neighbour in its own set. Precision = fraction of generated
  points inside the real support; recall = fraction of real points inside the generated support.
* Density and coverage (Naeem et al. 2020): density counts how many real balls hold each generated
  point (divided by k; ≈ 1 when the distributions match, and robust to real outliers); coverage is
  the fraction of real balls that hold at least one generated point.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..batching import map_batches
from .fid import _as_features


def _cdist(a: Tensor, b: Tensor, chunk: int = 2048) -> Tensor:
    return map_batches(lambda rows: torch.cdist(rows, b), a, batch_size=chunk, to_cpu=False)  # (A, B), chunk rows at a time


def knn_radii(features: Tensor, k: int) -> Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    d = _cdist(features, features)
    return d.kthvalue(k + 1, dim=1).values  # k+1: the 0 distance to itself is the 1st


def _inside(points: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """(P, C) boolean: point p lies in the closed ball of centre c."""
    return _cdist(points, centres) <= radii[None, :]


def precision_recall(real: object, generated: object, *, k: int = 3) -> dict[str, float]:
    r = torch.from_numpy(_as_features(real, "real features"))
    g = torch.from_numpy(_as_features(generated, "generated features"))
    precision = _inside(g, r, knn_radii(r, k)).any(dim=1).double().mean()
    recall = _inside(r, g, knn_radii(g, k)).any(dim=1).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real: object, generated: object, *, k: int = 5) -> dict[str, float]:
    r = torch.from_numpy(_as_features(real, "real features"))
    g = torch.from_numpy(_as_features(generated, "generated features"))
    inside = _inside(g, r, knn_radii(r, k))  # (G, R)
    density = inside.sum().double() / (k * len(g))
    coverage = inside.any(dim=0).double().mean()
    return {"density": float(density), "coverage": float(coverage)}

