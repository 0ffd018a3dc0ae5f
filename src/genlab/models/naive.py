"""Naive training of a generator: pair each generated sample with a random data point and minimise a
per-example distance (MSE, L1 or BCE) between them.

It does not work, and showing *how* it fails motivates GANs (Goodfellow et al. 2014): since the noise
z is independent of the data point it is paired with, the best output for every z is the one that
minimises the expected distance to a random data point, E_x d(G(z), x) -- the data mean for MSE, the
coordinate-wise median for L1, the mean intensity for BCE. Every z is sent to the same point: the
generator collapses all modes into the mean. :func:`genlab.reports.naive.collapse_stats` measures it
(spread of samples / spread of data, distance of samples to the data mean), ``genlab figure
naive-collapse`` draws it; the evaluator and end-of-training figure are in ``genlab.reports.naive``.

Batches are ``(x,)`` or ``(x, labels)``; only ``x`` is used. Points (B, x_dim) use an MLP generator;
images (B, C, H, W) in [0, 1] an MLP or DCGAN generator with a sigmoid output.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config, check
from ..errors import DataError
from ..nn.generators import ConvGenerator, MLPGenerator
from ..registry import register_model
from .base import Batch, GenerativeModel, LossOutput, as_images


@dataclasses.dataclass
class NaiveConfig(Config):
    x_dim: int = 2  # points: the data dimension (used when image_shape is None)
    image_shape: tuple[int, int, int] | None = None  # images: (C, H, W), filled from image data
    latent_dim: int = 2
    generator: Literal["mlp", "conv"] = "mlp"
    hidden_dims: tuple[int, ...] = (128, 128)  # MLP generator
    base_channels: int = 32  # conv generator
    loss: Literal["mse", "l1", "bce"] = "mse"

    def validate(self) -> None:
        check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        check(self.x_dim >= 1, f"model.x_dim must be >= 1, got {self.x_dim}")
        # conv generator and BCE need image_shape, which image data fills in after validation; the
        # model checks them when it is built

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.image_shape) if self.image_shape is not None else (self.x_dim,)


@register_model("naive")
class NaiveGenerator(GenerativeModel):
    """A generator trained by regression onto randomly paired data points."""

    config_class = NaiveConfig
    config: NaiveConfig
    defaults: dict[str, Any] = {"data": {"name": "ring8"},
                                "train": {"epochs": 20, "batch_size": 128, "lr": 1e-3, "fused_optimizer": False}}

    def __init__(self, config: NaiveConfig) -> None:
        super().__init__(config)
        images = config.image_shape is not None
        check(images or config.generator == "mlp", "model.generator=conv needs image data (model.image_shape)")
        check(images or config.loss != "bce", "model.loss=bce needs image data in [0, 1] (model.image_shape)")
        if config.generator == "conv":
            self.generator = ConvGenerator(config.latent_dim, config.image_shape, base_channels=config.base_channels)  # type: ignore[arg-type]
        else:
            self.generator = MLPGenerator(config.latent_dim, config.data_shape, hidden_dims=config.hidden_dims,
                                          output_activation="sigmoid" if images else None)

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def _noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)

    def loss(self, batch: Batch, phase: str = "main") -> LossOutput:
        x = batch[0]
        if self.config.image_shape is not None:  # a flat (B, C*H*W) batch too
            x = as_images(x, self.config.image_shape, "naive generator")
        if tuple(x.shape[1:]) != self.config.data_shape:
            raise DataError(f"naive generator expects data shaped (B, {', '.join(map(str, self.config.data_shape))}), got {tuple(x.shape)}")
        fake = self(self._noise(x.shape[0]))
        # z is drawn independently of the batch, so (fake[i], x[i]) is a random pairing
        if self.config.loss == "mse":
            distance = F.mse_loss(fake, x)
        elif self.config.loss == "l1":
            distance = F.l1_loss(fake, x)
        else:
            distance = F.binary_cross_entropy(fake.clamp(1e-6, 1 - 1e-6), x)
        return LossOutput(distance, {self.config.loss: distance, "spread_ratio": spread(fake.detach()) / spread(x).clamp_min(1e-12)})

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **_: Any) -> Tensor:
        return self(self._noise(n, generator))

    @torch.no_grad()
    def preview(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor | None:
        if self.config.image_shape is None:
            return None
        return self.sample(min(64, batch[0].shape[0]), generator=generator)


def spread(x: Tensor) -> Tensor:
    """Root mean squared distance of the points (B, ...) to their own mean (the logged ``spread_ratio``)."""
    flat = x.flatten(1)
    return (flat - flat.mean(0)).pow(2).sum(1).mean().sqrt()
