"""Log-space densities and analytic KL terms for diagonal Gaussians (the VAE's ELBO pieces).

Kingma & Welling (2014), "Auto-Encoding Variational Bayes", Appendix B gives the closed-form KL to
a standard normal; the general diagonal case is the textbook Gaussian KL. Every function takes
log-variances (never variances) and reduces over the last dimension, returning one value per
example. :func:`log_mean_exp` is the importance-weighted average used by IWAE bounds and
likelihood estimates (Burda et al., 2016).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["kl_standard_normal", "kl_diag_gaussians", "log_normal_diag", "log_standard_normal", "log_mean_exp"]

_LOG_2PI = math.log(2.0 * math.pi)


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)), summed over the last dim: (B..., D) -> (B...).

    KL = 1/2 * sum_d (mu_d^2 + exp(logvar_d) - 1 - logvar_d)
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def kl_diag_gaussians(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL(N(mu_q, diag exp(logvar_q)) || N(mu_p, diag exp(logvar_p))), summed over the last dim.

    KL = 1/2 * sum_d (logvar_p - logvar_q + (exp(logvar_q) + (mu_q - mu_p)^2) / exp(logvar_p) - 1)

    The variance ratio is formed as exp(logvar_q - logvar_p) so it neither overflows nor
    underflows when both variances are extreme.
    """
    ratio = (logvar_q - logvar_p).exp()
    mahalanobis = (mu_q - mu_p).pow(2) * (-logvar_p).exp()
    return 0.5 * (logvar_p - logvar_q + ratio + mahalanobis - 1.0).sum(dim=-1)


def log_normal_diag(x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(x; mu, diag exp(logvar)), summed over the last dim.

    log p = -1/2 * sum_d (log 2π + logvar_d + (x_d - mu_d)^2 / exp(logvar_d))
    """
    return -0.5 * (_LOG_2PI + logvar + (x - mu).pow(2) * (-logvar).exp()).sum(dim=-1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dim: -1/2 * sum_d (log 2π + z_d^2)."""
    return -0.5 * (_LOG_2PI + z.pow(2)).sum(dim=-1)


def log_mean_exp(values: Tensor, dim: int, *, keepdim: bool = False) -> Tensor:
    """log(1/n * sum_i exp(values_i)) along ``dim`` = logsumexp(values, dim) - log n, computed
    without leaving log space (n = values.shape[dim])."""
    n = values.shape[dim]
    return torch.logsumexp(values, dim=dim, keepdim=keepdim) - math.log(n)
