"""Sample-quality and mode-coverage metrics, each in its own module, each with a reference test.

Feature metrics are registered by name in :data:`METRICS` as ``fn(generated, reference, **options)
-> dict`` over (N, F) feature arrays; :func:`compare_features` runs several and attaches the
protocol (sample counts, reference split, extractor) that every reported number must carry.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..registry import Registry
from .bias import bias_audit, confusion_matrix, corrected_rates, format_audit
from .features import FeatureExtractor, get_extractor
from .fid import fid_from_features, frechet_distance, gaussian_stats, sqrtm_psd
from .kid import kid_from_features, polynomial_mmd2
from .modes import count_modes
from .precision_recall import density_coverage, precision_recall
from .rulers import RULER_RECIPES, Ruler, build_ruler, face_scores, face_splits
from .sharpness import gradient_energy, sharpness_ratio

METRICS: Registry[Callable[..., dict[str, float]]] = Registry("metric")
register_metric = METRICS.register


@register_metric("fid")
def _fid(generated: Any, reference: Any, **_: Any) -> dict[str, float]:
    return {"fid": fid_from_features(generated, reference)}


@register_metric("kid")
def _kid(generated: Any, reference: Any, *, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0, **_: Any) -> dict[str, float]:
    mean, std = kid_from_features(generated, reference, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    return {"kid": mean, "kid_std": std}


@register_metric("precision_recall")
def _pr(generated: Any, reference: Any, *, k: int = 3, **_: Any) -> dict[str, float]:
    return precision_recall(reference, generated, k=k)


@register_metric("density_coverage")
def _dc(generated: Any, reference: Any, *, k_density: int = 5, **_: Any) -> dict[str, float]:
    return density_coverage(reference, generated, k=k_density)


DEFAULT_METRICS = ("fid", "kid", "precision_recall", "density_coverage")


def compare_features(
    generated: Any,
    reference: Any,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    protocol: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run ``metrics`` on two (N, F) feature sets; the result holds each number and a ``protocol``
    dict (``num_generated``, ``num_reference``, ``feature_dim`` and whatever the caller adds:
    ``reference`` split, ``extractor``)."""
    out: dict[str, Any] = {}
    for name in metrics:
        out.update(METRICS.get(name)(generated, reference, **options))
    out["protocol"] = {
        "num_generated": int(len(generated)),
        "num_reference": int(len(reference)),
        "feature_dim": int(generated.shape[1]),
        **{k: v for k, v in options.items() if k in ("k", "k_density", "kid_subsets", "kid_subset_size")},
        **(protocol or {}),
    }
    return out


__all__ = [
    "METRICS", "register_metric", "compare_features", "DEFAULT_METRICS", "FeatureExtractor", "get_extractor",
    "fid_from_features", "frechet_distance", "gaussian_stats", "sqrtm_psd", "kid_from_features",
    "polynomial_mmd2", "count_modes", "precision_recall", "density_coverage", "bias_audit", "confusion_matrix",
    "corrected_rates", "format_audit", "RULER_RECIPES", "Ruler", "build_ruler", "face_scores", "face_splits",
    "gradient_energy", "sharpness_ratio",
]
