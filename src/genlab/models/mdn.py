"""Conditional density models: the mixture density network and its one-Gaussian baseline.

A mixture density network (Bishop 1994, "Mixture Density Networks") is an MLP whose outputs
parametrise a K-component mixture p(y | x) = sum_k pi_k(x) N(y; mu_k(x), diag sigma_k(x)^2) and is
trained by the negative log-likelihood, computed in log space (``MixtureSameFamily`` takes a
``logsumexp`` over components, so extreme logits and tiny scales stay finite). When a problem has
several right answers (the inverted sinusoid, the robot arm's elbow-up and elbow-down solutions)
the mixture keeps them apart; a network trained by MSE, or one Gaussian with a learned variance,
predicts their average, which is no answer at all.

Batches are ``(inputs (B, x_dim), targets (B, y_dim))``. Both registered models share the same
inference API: ``distribution(x)``, ``sample(x, n)``, ``modes(x)`` and ``predict(x)``. Their evaluator and
end-of-training figures are in ``genlab.reports.mdn``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..config import Config, check
from ..distributions.heads import GaussianHead, MixtureHead
from ..errors import DataError, GenlabError
from ..nn.generators import mlp, sample_distribution
from ..registry import register_model
from .base import Batch, GenerativeModel, LossOutput

# Both models train with a cosine schedule by default, so the last iterate is a settled one. The
# networks are tiny: the fused (multi-threaded) Adam kernel costs ~5x a plain one per step here.
_DEFAULTS = {"data": {"name": "inverse-sine"},
             "train": {"epochs": 100, "batch_size": 128, "lr": 3e-3, "lr_schedule": "cosine", "fused_optimizer": False}}


@dataclasses.dataclass
class MDNConfig(Config):
    x_dim: int = 1
    y_dim: int = 1
    hidden_dims: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "elu", "gelu", "silu"] = "tanh"
    num_components: int = 5
    component: Literal["gaussian", "laplace"] = "gaussian"
    scale: Literal["softplus", "exp"] = "softplus"
    min_scale: float = 1e-3  # floor on every component scale

    def validate(self) -> None:
        check(self.x_dim >= 1 and self.y_dim >= 1, f"model.x_dim and model.y_dim must be >= 1, got {self.x_dim}, {self.y_dim}")
        check(all(h >= 1 for h in self.hidden_dims), f"model.hidden_dims must be positive, got {self.hidden_dims}")
        check(self.num_components >= 1, f"model.num_components must be >= 1, got {self.num_components}")
        check(self.min_scale > 0, f"model.min_scale must be > 0, got {self.min_scale}")


@dataclasses.dataclass
class RegressorConfig(Config):
    x_dim: int = 1
    y_dim: int = 1
    hidden_dims: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "elu", "gelu", "silu"] = "tanh"
    # "gaussian": outputs mean and variance, trained by Gaussian NLL; "mse": mean only, trained by MSE
    likelihood: Literal["gaussian", "mse"] = "gaussian"
    scale: Literal["softplus", "exp"] = "softplus"
    min_scale: float = 1e-3

    def validate(self) -> None:
        check(self.x_dim >= 1 and self.y_dim >= 1, f"model.x_dim and model.y_dim must be >= 1, got {self.x_dim}, {self.y_dim}")
        check(all(h >= 1 for h in self.hidden_dims), f"model.hidden_dims must be positive, got {self.hidden_dims}")
        check(self.min_scale > 0, f"model.min_scale must be > 0, got {self.min_scale}")


class ConditionalDensityModel(GenerativeModel):
    """An MLP backbone and a distribution head: ``distribution(x)`` is p(y | x)."""

    defaults: dict[str, Any] = _DEFAULTS
    head: nn.Module

    def _build(self, config: Any) -> None:
        self.network = mlp(config.x_dim, config.hidden_dims, self.head.num_outputs, act=config.activation)

    def _check(self, x: Tensor, y: Tensor | None = None) -> None:
        cfg: Any = self.config
        if x.dim() != 2 or x.shape[1] != cfg.x_dim:
            raise DataError(f"{self.registry_name} expects inputs shaped (B, {cfg.x_dim}), got {tuple(x.shape)}")
        if y is not None and (y.dim() != 2 or y.shape != (x.shape[0], cfg.y_dim)):
            raise DataError(f"{self.registry_name} expects targets shaped ({x.shape[0]}, {cfg.y_dim}), got {tuple(y.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        """Raw head parameters (B, head.num_outputs)."""
        self._check(x)
        return self.network(x)

    def distribution(self, x: Tensor) -> Distribution:
        """p(y | x) with batch shape (B,) and event shape (y_dim,)."""
        return self.head(self(x))

    def log_prob(self, x: Tensor, y: Tensor) -> Tensor:
        self._check(x, y)
        return self.distribution(x).log_prob(y)  # (B,)

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        nll = -self.log_prob(batch[0], batch[1]).mean()
        return LossOutput(nll, {"nll": nll})

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, Tensor]:
        x, y = batch[0], batch[1]
        out = self.loss(batch)
        terms = {"loss": out.total, **out.terms}
        terms["mse"] = ((self.predict(x) - y) ** 2).sum(1).mean()
        return terms

    @torch.no_grad()
    def sample(self, x: Tensor | int, n: int = 1, *, generator: torch.Generator | None = None, **_: Any) -> Tensor:  # type: ignore[override]
        """``n`` draws from p(y | x) for each input: (n, B, y_dim)."""
        if not isinstance(x, Tensor):
            raise GenlabError(f"{self.registry_name} is conditional: call sample(x, n) with inputs x (B, {self.config.x_dim})")  # type: ignore[attr-defined]
        return sample_distribution(self.distribution(x), (n,), generator=generator)

    def modes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """One answer per input (B, y_dim): the most probable mode."""
        raise NotImplementedError


@register_model("mdn")
class MDN(ConditionalDensityModel):
    """Mixture density network: MLP -> [K logits | K*D means | K*D raw scales] -> mixture."""

    config_class = MDNConfig
    config: MDNConfig

    def __init__(self, config: MDNConfig) -> None:
        super().__init__(config)
        self.head = MixtureHead((config.y_dim,), num_components=config.num_components, component=config.component,
                                scale=config.scale, min_scale=config.min_scale)
        self._build(config)

    def components(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(log_weights (B, K), means (B, K, D), scales (B, K, D))."""
        return self.head.components(self(x))

    @torch.no_grad()
    def modes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Component means ordered by mixing weight, heaviest first: (means (B, K, D), weights (B, K))."""
        log_w, loc, _ = self.components(x)
        order = log_w.argsort(dim=1, descending=True)
        means = loc.gather(1, order[:, :, None].expand_as(loc))
        return means, log_w.gather(1, order).exp()

    @torch.no_grad()
    def predict(self, x: Tensor, *, refine_steps: int = 20) -> Tensor:
        """The most probable mode of p(y | x) (B, y_dim).

        Each component mean starts a fixed-point (mean-shift) ascent of the *mixture* density
        (Carreira-Perpinan 2000, "Mode-finding for mixtures of Gaussian distributions"):
        y <- sum_k r_k(y) mu_k / sigma_k^2 / sum_k r_k(y) / sigma_k^2 with responsibilities r_k, which
        moves a start to the nearest true mode when components overlap; the start that ends highest
        wins. Scoring by the mixture density, not by weight alone, prefers a tall narrow mode over a
        broad one of equal weight. Laplace mixtures (and ``refine_steps=0``) score the means only."""
        raw = self(x)
        log_w, loc, scale = self.head.components(raw)  # (B, K), (B, K, D), (B, K, D)
        mixture = self.head(raw)
        y = loc.clone()  # (B, S=K, D): one start per component
        if self.config.component == "gaussian":
            precision = scale.pow(-2)[:, None]  # (B, 1, K, D)
            for _ in range(refine_steps):
                comp = torch.distributions.Normal(loc[:, None], scale[:, None]).log_prob(y[:, :, None]).sum(-1)  # (B, S, K)
                r = torch.softmax(log_w[:, None] + comp, dim=-1)[..., None]  # (B, S, K, 1)
                y = (r * precision * loc[:, None]).sum(2) / (r * precision).sum(2)
        density = mixture.log_prob(y.transpose(0, 1)).transpose(0, 1)  # (B, S): log p(y_s | x)
        best = density.argmax(1)
        return y[torch.arange(y.shape[0]), best]


@register_model("regressor")
class Regressor(ConditionalDensityModel):
    """One Gaussian per input: the network outputs the mean (and, for ``likelihood="gaussian"``, the
    standard deviation, trained by Gaussian NLL). ``likelihood="mse"`` is the plain least-squares
    network: a unit-variance Gaussian, whose NLL is half the squared error plus a constant."""

    config_class = RegressorConfig
    config: RegressorConfig

    def __init__(self, config: RegressorConfig) -> None:
        super().__init__(config)
        scale = config.scale if config.likelihood == "gaussian" else "fixed"
        self.head = GaussianHead((config.y_dim,), scale=scale, min_scale=config.min_scale)
        self._build(config)

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        if self.config.likelihood == "gaussian":
            return super().loss(batch, phase)
        x, y = batch[0], batch[1]
        self._check(x, y)
        mse = ((self(x) - y) ** 2).sum(1).mean()
        return LossOutput(mse, {"mse": mse})

    @torch.no_grad()
    def modes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean = self.distribution(x).mean
        return mean[:, None], torch.ones(mean.shape[0], 1, device=mean.device)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        return self.distribution(x).mean
