"""Output heads (raw network outputs -> ``torch.distributions``) and log-space loss helpers."""
from __future__ import annotations

from .heads import (
    HEADS,
    BernoulliHead,
    CategoricalHead,
    ContinuousBernoulliHead,
    GaussianHead,
    Head,
    LaplaceHead,
    MixtureHead,
    StableContinuousBernoulli,
    make_head,
    positive_scale,
    register_head,
)
from .losses import kl_diag_gaussians, kl_standard_normal, log_mean_exp, log_normal_diag, log_standard_normal

__all__ = [
    "HEADS", "register_head", "make_head", "Head", "BernoulliHead", "CategoricalHead", "GaussianHead",
    "LaplaceHead", "ContinuousBernoulliHead", "MixtureHead", "StableContinuousBernoulli", "positive_scale",
    "kl_standard_normal", "kl_diag_gaussians", "log_normal_diag", "log_standard_normal", "log_mean_exp",
]
