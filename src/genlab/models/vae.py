"""Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes"), with the
importance-weighted likelihood bound of Burda, Grosse & Salakhutdinov 2016 ("IWAE") for evaluation.

Encoder -> Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))); reparametrised sample
z = mu + sigma * eps; decoder -> an output head's distribution p(x|z) (Bernoulli, continuous
Bernoulli, Gaussian or Laplace); prior p(z) = N(0, I). The loss is the negative ELBO with the KL
in closed form and a beta weight (Higgins et al. 2017):  E_q[-log p(x|z)] + beta * KL(q || p).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..config import Config, check
from ..distributions.heads import make_head
from ..distributions.losses import kl_standard_normal, log_normal_diag, log_standard_normal
from ..nn.blocks import build_decoder, build_encoder
from ..registry import register_model
from ..runtime import batch_randn
from .base import Batch, GenerativeModel, LossOutput, as_images


@dataclasses.dataclass
class VAEConfig(Config):
    architecture: Literal["mlp", "conv"] = "mlp"
    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 16
    hidden_dims: tuple[int, ...] = (512, 256)  # mlp: encoder widths (the decoder mirrors them)
    channels: tuple[int, ...] = (32, 64)  # conv: one stride-2 conv per entry
    norm: Literal["none", "batch"] = "none"
    likelihood: Literal["bernoulli", "continuous_bernoulli", "gaussian", "laplace"] = "bernoulli"
    scale: Literal["fixed", "exp", "softplus", "shared"] = "fixed"  # gaussian / laplace decoders
    fixed_scale: float = 0.1
    min_scale: float = 1e-3
    beta: float = 1.0
    # KL warm-up (Bowman et al. 2016; Sønderby et al. 2016): the KL weight rises linearly from 0 to
    # beta over this many training steps, so the decoder learns to use z before the prior pulls q to it
    kl_warmup_steps: int = 0

    def validate(self) -> None:
        check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        check(len(self.image_shape) == 3 and min(self.image_shape) >= 1, f"model.image_shape must be (C, H, W), got {self.image_shape}")
        check(self.beta >= 0, f"model.beta must be >= 0, got {self.beta}")
        check(self.kl_warmup_steps >= 0, f"model.kl_warmup_steps must be >= 0, got {self.kl_warmup_steps}")
        check(self.architecture == "mlp" or len(self.channels) >= 1, "model.channels must list at least one conv width")
        check(self.fixed_scale > 0 and self.min_scale > 0, "model.fixed_scale and model.min_scale must be > 0")


def head_options(config: Any) -> dict[str, Any]:
    if config.likelihood in ("gaussian", "laplace"):
        return {"scale": config.scale, "fixed_scale": config.fixed_scale, "min_scale": config.min_scale}
    return {}


@register_model("vae")
class VAE(GenerativeModel):
    config_class = VAEConfig
    defaults: ClassVar[dict[str, dict[str, Any]]] = {"train": {"epochs": 30, "lr": 1e-3}, "data": {"binarize": "dynamic"}}
    config: VAEConfig
    channels_last_faster = True  # NHWC: 1.12x fp32, 1.08x bf16 (conv VAE, benchmarks/precision_throughput.py)

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        c = config
        self.head = make_head(c.likelihood, c.image_shape, **head_options(c))
        kwargs = {"hidden_dims": c.hidden_dims, "channels": c.channels, "norm": c.norm}
        self.encoder = build_encoder(c.architecture, c.image_shape, 2 * c.latent_dim, **kwargs)
        self.decoder = build_decoder(c.architecture, c.image_shape, c.latent_dim, self.head.params_per_dim, **kwargs)
        if c.kl_warmup_steps:
            # training steps taken, saved with the weights so that a resumed run continues the ramp
            self.register_buffer("steps_trained", torch.zeros((), dtype=torch.long))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    # ------------------------------------------------------------------ the model
    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x) parameters: (mu, logvar), each (B, latent_dim)."""
        return self.encoder(as_images(x, self.config.image_shape, "VAE")).chunk(2, dim=-1)  # type: ignore[return-value]

    def likelihood(self, z: Tensor) -> torch.distributions.Distribution:
        """p(x|z) for a batch of codes (B, latent_dim); ``log_prob(x)`` is (B,)."""
        return self.head(self.decoder(z))

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """The decoder's mean image, clamped to [0, 1]."""
        return self.likelihood(z).mean.clamp(0, 1)

    def reconstruct(self, x: Tensor) -> Tensor:
        """(B, C, H, W) images (or a flat batch) -> their reconstructions (B, C, H, W)."""
        return self.decode(self.encode(x))

    def sample(self, n: int, *, generator: torch.Generator | None = None, **kwargs: Any) -> Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        return self.decode(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    # ------------------------------------------------------------------ objectives
    def _terms(self, x: Tensor, *, batch_mean: bool = False) -> tuple[Tensor, Tensor]:
        """Per-example reconstruction NLL and KL, each (B,); their batch means with ``batch_mean``
        (the training loss: the head's fused mean NLL, no per-example loss map)."""
        x = as_images(x, self.config.image_shape, "VAE")  # a flat (B, C*H*W) batch too
        mu, logvar = self.posterior(x)
        # reparametrisation; the noise is a function of the global example under several processes
        z = mu + batch_randn(mu.shape, device=mu.device, dtype=mu.dtype) * torch.exp(0.5 * logvar)
        if batch_mean:
            return self.head.mean_nll(self.decoder(z), x), kl_standard_normal(mu, logvar).mean()
        return -self.likelihood(z).log_prob(x), kl_standard_normal(mu, logvar)

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        return self.objective(*self._terms(batch[0], batch_mean=True))

    def objective(self, recon: Tensor, kl: Tensor) -> LossOutput:
        """The training loss from the batch means of the reconstruction NLL and the KL, with the KL warm-up."""
        if not self.config.kl_warmup_steps:
            return LossOutput(recon + self.config.beta * kl, {"recon": recon, "kl": kl})
        if self.training and torch.is_grad_enabled():  # a training step, not an evaluation
            self.steps_trained += 1
        beta = self.config.beta * self.steps_trained.clamp(max=self.config.kl_warmup_steps) / self.config.kl_warmup_steps
        return LossOutput(recon + beta * kl, {"recon": recon, "kl": kl, "beta": beta})

    def elbo(self, x: Tensor) -> Tensor:
        """Single-sample ELBO per example (B,), in nats."""
        recon, kl = self._terms(x)
        return -(recon + kl)

    @torch.no_grad()
    def iwae_nll(self, x: Tensor, k: int = 1000, *, max_rows: int = 65536) -> Tensor:
        """-log p(x) estimated with k importance samples from q (Burda et al. 2016), per example (B,).

        log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k. Samples are drawn
        in chunks of at most ``max_rows`` decoder rows, so k = 5000 fits in memory; the chunks'
        log-sum-exps combine exactly.
        """
        x = as_images(x, self.config.image_shape, "VAE")
        mu, logvar = self.posterior(x)
        b = x.shape[0]
        chunk = max(1, min(k, max_rows // b))
        partial: list[Tensor] = []
        std = torch.exp(0.5 * logvar)
        done = 0
        while done < k:
            c = min(chunk, k - done)
            z = mu + std * torch.randn(c, *mu.shape, device=mu.device)  # (c, B, D)
            raw = self.decoder(z.reshape(c * b, -1))
            # a (c, B) batch of likelihoods; x (B, ...) broadcasts over the c draws without a copy
            log_px = self.head(raw.reshape(c, b, *raw.shape[1:])).log_prob(x)
            log_w = log_px + log_standard_normal(z) - log_normal_diag(z, mu, logvar)  # (c, B)
            partial.append(torch.logsumexp(log_w, dim=0))
            done += c
        return -(torch.logsumexp(torch.stack(partial), dim=0) - math.log(k))

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, Tensor]:
        recon, kl = self._terms(batch[0])
        return {"loss": (recon + self.config.beta * kl).mean(), "recon": recon.mean(), "kl": kl.mean(), "elbo": -(recon + kl).mean()}

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        return self.sample(batch[0].shape[0], generator=generator)
