"""A generator from an autoencoder: fit a density to its latent codes and sample from it.

A plain autoencoder puts no prior on its codes, so decoding z ~ N(0, I) lands where no training
image was encoded. Fitting a full-covariance Gaussian (or a Gaussian mixture, as pythae's
``GaussianMixtureSampler`` and Ghosh et al., "From Variational to Deterministic Autoencoders",
ICLR 2020, do) to the encoded training set and sampling from it gives codes the decoder knows.

scikit-learn fits the mixture (EM with k-means initialisation); it is an optional dependency
(``pip install genlab[latent]``) imported only when a mixture is fitted. Sampling uses torch and
an explicit ``torch.Generator``, so samples are reproducible and never touch the global RNG.
"""
from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, MixtureSameFamily, MultivariateNormal

from ..batching import eval_mode, map_batches, module_device
from ..errors import ConfigError, DataError, GenlabError
from .protocols import require

log = logging.getLogger(__name__)


class LatentDensity:
    """A full-covariance Gaussian (``kind="gaussian"``) or a ``components``-way GMM fitted to codes.

    >>> density = LatentDensity("gmm", components=10).fit(codes)   # codes: (N, D)
    >>> z = density.sample(400, generator=torch.Generator().manual_seed(0))  # (400, D)
    """

    def __init__(self, kind: Literal["gaussian", "gmm"] = "gaussian", *, components: int = 10,
                 ridge: float = 1e-6, max_iter: int = 200, seed: int = 0) -> None:
        if kind not in ("gaussian", "gmm"):
            raise ConfigError(f"unknown latent density {kind!r}; valid: gaussian, gmm")
        if components < 1:
            raise ConfigError(f"a mixture needs components >= 1, got {components}")
        self.kind, self.components, self.ridge, self.max_iter, self.seed = kind, components, ridge, max_iter, seed
        self.weights: Tensor | None = None  # (K,)
        self.means: Tensor | None = None  # (K, D)
        self.scale_tril: Tensor | None = None  # (K, D, D) Cholesky factors of the covariances

    @classmethod
    def from_spec(cls, spec: str, **kwargs) -> "LatentDensity":
        """``"gaussian"`` or ``"gmm:K"`` (the CLI's ``--latent-density`` value)."""
        kind, _, count = spec.partition(":")
        if kind == "gaussian" and not count:
            return cls("gaussian", **kwargs)
        if kind == "gmm":
            try:
                components = int(count) if count else 10
            except ValueError:
                raise ConfigError(f"latent density {spec!r}: the number of components must be an integer (gmm:10)") from None
            return cls("gmm", components=components, **kwargs)
        raise ConfigError(f"unknown latent density {spec!r}; valid: gaussian, gmm:K")

    def __repr__(self) -> str:
        fitted = "" if self.means is None else f", dim={self.means.shape[1]}"
        extra = f", components={self.components}" if self.kind == "gmm" else ""
        return f"LatentDensity({self.kind!r}{extra}{fitted})"

    # ------------------------------------------------------------------ fitting
    def fit(self, codes: Tensor) -> "LatentDensity":
        """Fit to (N, D) codes. Covariances get ``ridge * mean variance`` added to the diagonal so a
        code space that uses fewer than D directions still has a Cholesky factor."""
        codes = torch.as_tensor(codes).detach().to("cpu", torch.float64)
        if codes.dim() != 2:
            raise DataError(f"latent codes must be (N, D), got shape {tuple(codes.shape)}")
        n, d = codes.shape
        if not bool(torch.isfinite(codes).all()):
            raise DataError("latent codes contain NaN or infinite values")
        if self.kind == "gaussian":
            if n < 2:
                raise DataError(f"fitting a Gaussian needs at least 2 codes, got {n}")
            mean = codes.mean(0)
            centred = codes - mean
            cov = centred.T @ centred / (n - 1)
            self.weights = torch.ones(1, dtype=torch.float64)
            self.means = mean[None]
            self.scale_tril = self._cholesky(cov)[None]
        else:
            self._fit_gmm(codes)
        log.debug("fitted %r to %d codes", self, n)
        return self

    def _fit_gmm(self, codes: Tensor) -> None:
        try:
            from sklearn.mixture import GaussianMixture
        except ImportError:
            raise GenlabError("a GMM latent density needs scikit-learn: pip install 'genlab[latent]'") from None
        n = codes.shape[0]
        if n < self.components:
            raise DataError(f"a {self.components}-component mixture needs at least {self.components} codes, got {n}")
        gmm = GaussianMixture(n_components=self.components, covariance_type="full", max_iter=self.max_iter,
                              reg_covar=self.ridge * float(codes.var(0).mean()) + 1e-12, random_state=self.seed)
        gmm.fit(codes.numpy())
        if not gmm.converged_:
            log.warning("GMM with %d components did not converge in %d EM steps", self.components, self.max_iter)
        self.weights = torch.from_numpy(gmm.weights_).double()
        self.means = torch.from_numpy(gmm.means_).double()
        self.scale_tril = torch.stack([self._cholesky(torch.from_numpy(c).double()) for c in gmm.covariances_])

    def _cholesky(self, cov: Tensor) -> Tensor:
        d = cov.shape[0]
        jitter = self.ridge * float(cov.diagonal().mean().clamp_min(1e-12))
        eye = torch.eye(d, dtype=cov.dtype)
        for _ in range(6):  # grow the jitter until the factorisation succeeds
            factor, info = torch.linalg.cholesky_ex(cov + jitter * eye)
            if int(info) == 0:
                return factor
            jitter *= 10
        raise DataError("latent covariance is not positive definite even with jitter; are the codes constant?")

    # ------------------------------------------------------------------ using it
    def _check(self) -> None:
        if self.means is None:
            raise GenlabError("LatentDensity is not fitted yet; call fit(codes) first")

    @property
    def dim(self) -> int:
        self._check()
        return int(self.means.shape[1])  # type: ignore[union-attr]

    def sample(self, n: int, *, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """(n, D) codes: a component by its weight, then mean + L @ eps."""
        self._check()
        assert self.weights is not None and self.means is not None and self.scale_tril is not None
        if self.weights.shape[0] == 1:
            component = torch.zeros(n, dtype=torch.long)
        else:
            component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, 1, generator=generator, dtype=torch.float64)
        z = self.means[component] + (self.scale_tril[component] @ eps).squeeze(-1)  # (n, D)
        return z.to(dtype)

    def distribution(self) -> Distribution:
        """The fitted density as a ``torch.distributions`` object (a MultivariateNormal, or a
        MixtureSameFamily whose log-density is a log-sum-exp over components)."""
        self._check()
        assert self.weights is not None and self.means is not None and self.scale_tril is not None
        if self.kind == "gaussian":
            return MultivariateNormal(self.means[0], scale_tril=self.scale_tril[0])
        return MixtureSameFamily(Categorical(probs=self.weights), MultivariateNormal(self.means, scale_tril=self.scale_tril))

    def log_prob(self, z: Tensor) -> Tensor:
        """Log-density of (N, D) codes -> (N,)."""
        return self.distribution().log_prob(z.double()).to(z.dtype)

    def mean(self) -> Tensor:
        self._check()
        return (self.weights[:, None] * self.means).sum(0)  # type: ignore[index,operator]

    def covariance(self) -> Tensor:
        """Covariance of the fitted density (for a mixture: within- plus between-component)."""
        self._check()
        assert self.weights is not None and self.means is not None and self.scale_tril is not None
        covs = self.scale_tril @ self.scale_tril.transpose(-1, -2)
        centred = self.means - self.mean()
        return (self.weights[:, None, None] * (covs + centred[:, :, None] * centred[:, None, :])).sum(0)


def encode_all(model: torch.nn.Module, images: Tensor, *, batch_size: int = 256) -> Tensor:
    """``model.encode`` in eval mode and in batches: (N, C, H, W) -> codes (N, D) on the CPU."""
    require(model, "encoder", purpose="encoding (genlab.latent.project finds codes without one)")
    with eval_mode(model):
        return map_batches(model.encode, images, batch_size=batch_size, device=module_device(model))


def fit_latent_density(model: torch.nn.Module, images: Tensor, spec: str | LatentDensity = "gaussian", *,
                       batch_size: int = 256) -> LatentDensity:
    """Encode ``images`` (a model's training set) and fit ``spec`` (``gaussian`` / ``gmm:K``) to the codes."""
    density = LatentDensity.from_spec(spec) if isinstance(spec, str) else spec
    return density.fit(encode_all(model, images, batch_size=batch_size))


def sample_images(model: torch.nn.Module, density: LatentDensity, n: int, *,
                  generator: torch.Generator | None = None, batch_size: int = 256) -> Tensor:
    """Decode n codes drawn from ``density``: (n, C, H, W)."""
    from .interpolate import decode

    return decode(model, density.sample(n, generator=generator), batch_size=batch_size)
